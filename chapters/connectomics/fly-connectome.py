# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A connectome-constrained network of fly motion vision
#
# **Papers.** F. D. Tschopp, M. B. Reiser, S. C. Turaga, *A connectome based hexagonal
# lattice convolutional network model of the Drosophila visual system*, arXiv:1806.04793
# (2018); J. K. Lappalainen, F. D. Tschopp, S. Prakhya, M. McGill, A. Nern, K. Shinomiya,
# S. Takemura, E. Gruntman, J. H. Macke, S. C. Turaga, *Connectome-constrained networks
# predict neural activity across the fly visual system*, Nature 634 (2024)
# ([doi:10.1038/s41586-024-07939-3](https://doi.org/10.1038/s41586-024-07939-3)).
#
# An electron-microscopy connectome says which cell types connect, at which relative column
# offsets and with how many synapses; it says nothing about dynamics. Both papers build a
# network whose wiring is the connectome, tiled over a hexagonal lattice of visual columns
# (a "hexagonal convolution"), and whose only free parameters are one time constant and one
# resting potential per cell type and one synapse scale per connected pair of types
# (Lappalainen et al., Methods, eq. 1-3). The test case is direction selectivity of the
# ON-motion detectors T4a-d: each prefers one cardinal direction, and the anatomy places fast
# excitation (Mi1, Tm3) in the centre column and slower inhibition (Mi4, Mi9) offset along
# the preferred axis. Tschopp et al. (sec. 3-4) report that connectome-initialised networks
# trained by backpropagation through time develop the known T4 tuning while randomly wired
# ones do not; Lappalainen et al. (Fig. 2-4) scale this to 64 cell types on 721 columns
# (45,669 neurons, 1,513,231 connections) and predict T4/T5 direction selectivity and
# ON/OFF polarity across types.
#
# **What this chapter checks.** C0: the compiled graph has the paper's size. C1: the
# untrained connectome network already gives each T4 subtype its known preferred direction.
# C2: that comes from the wiring's spatial layout (collapsing or rotating the T4 input
# filters destroys it). C3: training on motion decoding keeps the tuning and strengthens it,
# where a randomly wired control trained identically does not get it. C4: ON-flash polarities
# of seven ON-pathway types. Every claim judged at ci carries a control judged by the same
# rule.
#
# **Data and attribution.** The type-level connectome (FIB-25/FIB-19, 65 cell types, 605
# type-pair filters) is the file `fib25-fib19_v2.2.json` of the `flyvis` 1.2.0 package
# (TuragaLab, MIT licence), shipped unchanged in this book's `data/` with its sha256. The
# training movies are procedurally generated textures and edges, not the Sintel optic-flow
# movies of Lappalainen et al., and the ci network is the 21-type T4 subcircuit.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` probes the 21-type subcircuit at R = 6 and
# trains it at R = 4 on two CPU cores; `full` probes and trains all 65 types at R = 15 (the
# paper's 721 columns) with three seeds.

# %%

import numpy as np
import torch

from neuroinverse import plotting
from neuroinverse.data import data_path
from neuroinverse.inference import (
    MotionDecoder,
    edge_tuning,
    flash_polarity,
    reichardt_tuning,
    train_motion_decoder,
)
from neuroinverse.metrics import angular_error, direction_selectivity, polarity_agreement
from neuroinverse.models import ConnectomeNetwork
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import setup, timed
from neuroinverse.simulators import (
    T4_SUBCIRCUIT,
    T4_TYPES,
    HexLattice,
    collapse_filters,
    compile_connectome,
    filter_of,
    load_connectome,
    randomise_filters,
    rotate_filters,
)

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        types="t4",
        probe_extent=6,
        train_extent=4,
        dt_probe=0.005,
        dt_train=0.01,
        n_steps=60,
        batch=4,
        n_frames=30,
        n_settle=20,
        lr=1e-2,
        seeds=(0,),
    ),
    full=dict(
        types="all",
        probe_extent=15,
        train_extent=15,
        dt_probe=0.005,
        dt_train=0.01,
        n_steps=2000,
        batch=4,
        n_frames=40,
        n_settle=30,
        lr=1e-2,
        seeds=(0, 1, 2),
    ),
)
TYPES = T4_SUBCIRCUIT if cfg.types == "t4" else None
ANGLES = np.arange(0, 360, 30)
TRUE_PD = np.array(
    [180.0, 0.0, 90.0, 270.0]
)  # T4a-d (Maisak et al. 2013; Lappalainen et al., Fig. 3)
SPEED, T_PRE, T_STIM = 20.0, 0.5, 0.7  # columns/s; grey-free dark settling, then the edge (s)
POLARITY = {
    "Mi1": 1,
    "Tm3": 1,
    "Mi4": 1,
    "T4a": 1,
    "L1": -1,
    "L3": -1,
    "Mi9": -1,
}  # ON = 1, OFF = -1
plotting.apply_style()
print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")

# %% [markdown]
# ## The connectome on a hexagonal lattice
#
# Columns sit at axial coordinates $(u, v)$ with $|u|, |v|, |u+v| \le R$; in the visual
# field $x = 1.5\,v$, $y = -\sqrt{3}\,(u + v/2)$ (the frame in which the preferred
# directions are given). A filter lists, per offset $(\Delta u, \Delta v)$, the mean number of
# synapses from a source cell at $(u, v)$ onto the target cell at $(u+\Delta u, v+\Delta v)$;
# gaps inside the convex hull of a filter with three or more offsets get one synapse
# (Lappalainen et al., Methods). C0 compiles all 65 types at R = 15.

# %%
spec = load_connectome(data_path("fly-connectome/fib25-fib19_v2.2.json"))
full_graph, t_compile = timed(lambda: compile_connectome(spec, extent=15))
probe_lattice, train_lattice = HexLattice(cfg.probe_extent), HexLattice(cfg.train_extent)
graphs = {
    "connectome": compile_connectome(spec, extent=cfg.probe_extent, cell_types=TYPES),
    "collapse": compile_connectome(
        collapse_filters(spec), extent=cfg.probe_extent, cell_types=TYPES
    ),
    "rotate": compile_connectome(
        rotate_filters(spec, np.random.default_rng(seed)), extent=cfg.probe_extent, cell_types=TYPES
    ),
}
random_spec = randomise_filters(spec, np.random.default_rng(seed))
g = graphs["connectome"]
print(f"all types, R = 15: {full_graph.n_neurons} neurons, {full_graph.n_edges} edges")
print(
    f"probe network, R = {cfg.probe_extent}: {g.n_neurons} neurons, {g.n_edges} edges, "
    f"{len(g.pairs)} type pairs"
)

# %% tags=["nbval-ignore-output"]
print(f"compiling all types at R = 15 took {t_compile:.2f} s")

# %% [markdown]
# The inputs of a T4a cell by offset ({numref}`fig-fly-connectome-t4a-filters`).

# %% tags=["remove-output"]
fig, axs = plotting.figure(1, 1, width=6.5, height=4.5)
ax = axs[0, 0]
hx = HexLattice(4)
ax.scatter(hx.x, hx.y, s=300, facecolors="none", edgecolors="0.8", marker="h")
roles = {"Mi1": "method", "Tm3": "baseline2", "Mi4": "baseline", "Mi9": "reference"}
for k, (src, role) in enumerate(roles.items()):
    offs = filter_of(spec, src, "T4a")
    du = np.array([o[0][0] for o in offs])
    dv = np.array([o[0][1] for o in offs])
    n = np.array([o[1] for o in offs])
    # the target sits at source + offset, so the source sits at target - offset
    x, y = 1.5 * (-dv), -np.sqrt(3) * (-du - dv / 2)
    jitter = 0.18 * np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]])[k]
    ax.scatter(
        x + jitter[0],
        y + jitter[1],
        s=12 * n,
        color=plotting.COLORS[role],
        alpha=0.8,
        label=f"{src} → T4a",
    )
ax.set_xlabel("x (lattice units)")
ax.set_ylabel("y (lattice units)")
ax.set_aspect("equal")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, markerscale=0.4)
ax.set_title("presynaptic columns of the T4a cell at (0, 0)")
plotting.save(fig, "fly-connectome", "t4a_filters")

# %% [markdown]
# ```{glue:figure} t4a_filters
# ---
# name: fig-fly-connectome-t4a-filters
# alt: >-
#   A hexagonal lattice of columns in lattice units, with coloured dots at the columns that send
#   Mi1, Tm3, Mi4 and Mi9 synapses to the T4a cell at the centre; dot area grows with the
#   synapse count.
# ---
# The presynaptic columns of the T4a cell at (0, 0), one colour per input type, the marker area
# the mean synapse count. Mi1 and Tm3 excite it at and next to its own column; Mi4 and Mi9
# inhibit it from opposite sides of the horizontal axis, the axis of its preferred direction.
# ```

# %% [markdown]
# ## The untrained connectome network and its spatial controls
#
# Passive point neurons with graded rectified synapses,
# $\tau_t \dot V_i = -V_i + V^\mathrm{rest}_t
# + \sum_j \mathrm{sign}_{tt'} n_{ij} s_{tt'} \mathrm{ReLU}(V_j) + e_i$
# (Lappalainen et al., eq. 1-3), at the initial values of the paper's training: every
# $s = 0.01$, every $\tau = 50$ ms, $V^\mathrm{rest} = 0.5$ (here without the paper's
# 0.05 spread, so that the untrained network has no random part). The stimulus: 0.5 s of
# darkness to settle, then a bright edge sweeping at 20 columns/s in one of 12
# directions; the response of each central T4 cell is its peak depolarisation above the
# settled baseline. A second run uses fast lamina/Mi1/Tm3 (20 ms) and slow Mi4/Mi9 (80 ms)
# time constants. The controls rewire only the inputs of T4a-d: **collapse** moves every
# offset to the T4 cell's own column, **rotate** turns each input filter by a random multiple
# of 60°.

# %%
probe = dict(
    cell_types=T4_TYPES, angles_deg=ANGLES, speed=SPEED, dt=cfg.dt_probe, t_pre=T_PRE, t_stim=T_STIM
)
FAST_SLOW = {
    "*": 0.05,
    **{t: 0.02 for t in ("L1", "L2", "L3", "L4", "L5", "Mi1", "Tm3")},
    "Mi4": 0.08,
    "Mi9": 0.08,
}


def untrained(graph, tau=0.05):
    return ConnectomeNetwork(graph, tau=tau, tau_min=cfg.dt_probe, v_rest_std=0.0).to(rt.device)


tuning, traces = {}, {}
for name, graph in graphs.items():
    tuning[name], traces[name] = edge_tuning(untrained(graph), graph, probe_lattice, **probe)
tuning["fast/slow tau"], _ = edge_tuning(untrained(g, FAST_SLOW), g, probe_lattice, **probe)
hr = np.stack(
    [
        reichardt_tuning(probe_lattice, preferred_deg=pd, angles_deg=ANGLES, speed=SPEED,
                         dt=cfg.dt_probe,
                         t_pre=T_PRE, t_stim=T_STIM)
        for pd in TRUE_PD
    ]
)  # fmt: skip
tuning["Reichardt"] = hr


def summary(resp):
    pd, dsi = direction_selectivity(resp, ANGLES)
    return dict(pd=pd, dsi=dsi, err=angular_error(pd, TRUE_PD), amp=resp.max(1))


stats = {k: summary(v) for k, v in tuning.items()}
for k, s in stats.items():
    print(
        f"{k:14s} PD {np.round(s['pd']).astype(int)}  DSI {np.round(s['dsi'], 2)}  "
        f"peak {np.round(s['amp'], 4)}"
    )

# %% [markdown]
# ## Training on motion decoding
#
# The network and a linear readout (shared by all columns, from the rectified responses of
# the output types Tm3 and T4a-d in the ci subcircuit; all 34 output types at full) are
# trained with Adam through the book's one loop to report the velocity of moving textures
# and single ON/OFF edges, with backpropagation through time over 30 steps of 10 ms at ci
# (40 at full; the second half of each clip in the loss), 60 Adam steps of batch 4 at ci
# (2,000 at full; Tschopp et al. train for far longer). The trained parameters are the
# per-type time constants and resting potentials and the per-pair scales, as in the papers.
# The **random-init control** (Tschopp et al., sec. 4) has the same type pairs and
# parameter count, random signs and each filter's offsets redrawn within radius 2, and gets
# the same training. The trained type-level parameters are then copied onto the probe
# lattice and probed as above.

# %%
readout = [t for t in spec["output_units"] if TYPES is None or t in TYPES]
trained, histories = {}, {}
for label, sp in (("trained", spec), ("random trained", random_spec)):
    tr_graph = compile_connectome(sp, extent=cfg.train_extent, cell_types=TYPES)
    pr_graph = compile_connectome(sp, extent=cfg.probe_extent, cell_types=TYPES)
    for s in cfg.seeds:
        gen = torch.Generator().manual_seed(s)
        net = ConnectomeNetwork(tr_graph, tau=0.05, tau_min=cfg.dt_train, generator=gen).to(
            rt.device
        )
        model = MotionDecoder(net, tr_graph, readout).to(rt.device)
        histories[label, s] = train_motion_decoder(
            model, train_lattice, n_steps=cfg.n_steps, batch=cfg.batch, n_frames=cfg.n_frames,
            dt=cfg.dt_train, lr=cfg.lr, speed_range=(5.0, 20.0), n_settle=cfg.n_settle, seed=s,
            p_edge=1.0,
        )  # fmt: skip
        probe_net = ConnectomeNetwork(pr_graph, tau_min=cfg.dt_train).to(rt.device)
        probe_net.load_state_dict(dict(net.named_parameters()), strict=False)
        trained[label, s] = (probe_net, pr_graph)
resp = {
    label: np.mean(
        [edge_tuning(*trained[label, s], probe_lattice, **probe)[0] for s in cfg.seeds], 0
    )
    for label in ("trained", "random trained")
}
tuning.update(resp)
stats.update({k: summary(v) for k, v in resp.items()})
polarity = {
    label: flash_polarity(
        *trained[label, cfg.seeds[0]], probe_lattice, cell_types=list(POLARITY), dt=cfg.dt_probe
    )
    for label in ("trained", "random trained")
}
polarity["connectome"] = flash_polarity(
    untrained(g), g, probe_lattice, cell_types=list(POLARITY), dt=cfg.dt_probe
)
for k in ("trained", "random trained"):
    s = stats[k]
    print(
        f"{k:14s} PD {np.round(s['pd']).astype(int)}  DSI {np.round(s['dsi'], 2)}  "
        f"peak {np.round(s['amp'], 4)}"
    )
for k, p in polarity.items():
    print(
        f"{k:14s} flash polarity agrees for {polarity_agreement(p, POLARITY)} "
        f"of {len(POLARITY)} types"
    )

# %% [markdown]
# ## Tuning curves
#
# The response of each T4 subtype to edges moving in 12 directions, for the untrained
# connectome network, the trained networks and an idealised reference
# ({numref}`fig-fly-connectome-tuning`).

# %% tags=["remove-output"]
show = {
    "connectome": "method",
    "trained": "baseline",
    "random trained": "baseline2",
    "Reichardt": "reference",
}
fig, axes = plotting.figure(2, 2, width=7, height=5.6, subplot_kw=dict(projection="polar"))
axes = axes.ravel()
theta = np.deg2rad(np.r_[ANGLES, ANGLES[0]])
for j, (ax, t) in enumerate(zip(axes, T4_TYPES, strict=True)):
    for k, role in show.items():
        r = tuning[k][j] / max(tuning[k][j].max(), 1e-12)
        ax.plot(theta, np.r_[r, r[0]], color=plotting.COLORS[role], label=k)
    ax.annotate("", xy=(np.deg2rad(TRUE_PD[j]), 1.0), xytext=(0, 0),
                arrowprops=dict(color=plotting.COLORS["truth"], width=1.5,
                                headwidth=6))  # fmt: skip
    ax.set_title(t)
    ax.set_xlabel("edge direction (deg)")
    ax.set_ylabel("peak / max", labelpad=24)
    ax.set_yticklabels([])
    ax.set_thetagrids([0, 90, 180, 270])
    ax.tick_params(labelsize=8)
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=4, fontsize=8)
plotting.save(fig, "fly-connectome", "t4_tuning")

# %% [markdown]
# ```{glue:figure} t4_tuning
# ---
# name: fig-fly-connectome-tuning
# alt: >-
#   Four polar plots, one per T4 subtype a to d, of the peak response against edge direction for
#   the untrained connectome network, the trained network, the trained network with random
#   connectivity and the Reichardt correlator, with a black arrow at the known preferred
#   direction.
# ---
# Peak response against edge direction for T4a-d, each curve scaled to its own maximum, with the
# known preferred directions as arrows; the Hassenstein-Reichardt correlator (two half-detectors
# on neighbouring columns, low-pass 50 ms) is the idealised reference. The untrained connectome
# network's preferred directions here are {glue:text}`c1_pd`.
# ```

# %% [markdown]
# The same responses summarised per subtype and network, with the spatial controls
# ({numref}`fig-fly-connectome-dsi`).

# %% tags=["remove-output"]
conds = ["connectome", "collapse", "rotate", "trained", "random trained"]
roles = ["method", "data", "reference", "baseline", "baseline2"]
fig, ((a1, a2),) = plotting.figure(1, 2, width=7, height=3.0)
w = 0.16
for i, (c, role) in enumerate(zip(conds, roles, strict=True)):
    xs = np.arange(4) + (i - 2) * w
    a1.bar(xs, stats[c]["dsi"], w, color=plotting.COLORS[role], label=c)
    a2.bar(xs, stats[c]["err"], w, color=plotting.COLORS[role], label=c)
for a, lab in ((a1, "DSI"), (a2, "PD error (deg)")):
    a.set_xticks(range(4), T4_TYPES)
    a.set_xlabel("T4 subtype")
    a.set_ylabel(lab)
a2.axhline(30, color=plotting.COLORS["truth"], lw=0.8, ls="--")
fig.legend(*a1.get_legend_handles_labels(), loc="outside upper center", ncol=5, fontsize=7)
plotting.save(fig, "fly-connectome", "dsi_pd_error")

# %% [markdown]
# ```{glue:figure} dsi_pd_error
# ---
# name: fig-fly-connectome-dsi
# alt: >-
#   Two grouped bar charts over the subtypes T4a to T4d, five bars per subtype (untrained
#   connectome, collapse and rotate controls, trained, random trained): left the
#   direction-selectivity index, right the preferred-direction error in degrees with a dashed
#   line at 30 degrees.
# ---
# Direction-selectivity index (left) and preferred-direction error (right) per subtype and
# network; the dashed line marks 30°. The controls rewire only the inputs of T4a-d: collapse
# moves every offset to the T4 cell's own column, rotate turns each input filter by a random
# multiple of 60°.
# ```

# %% [markdown]
# The training runs, and inside the untrained network
# ({numref}`fig-fly-connectome-training`).

# %% tags=["remove-output"]
fig, ((a1, a2),) = plotting.figure(1, 2, width=7, height=3.0)
for (label, s), h in histories.items():
    role = "method" if label == "trained" else "baseline2"
    a1.plot(h.steps, h.loss, color=plotting.COLORS[role], lw=0.8, label=f"{label} (seed {s})")
a1.set_xlabel("training step")
a1.set_ylabel("decoding loss (MSE)")
a1.legend(fontsize=7)
probe_types = ["Mi1", "Mi4", "Mi9", "T4a"]
_, tr_v = edge_tuning(untrained(g), g, probe_lattice, **{**probe, "cell_types": probe_types})
tt = np.arange(tr_v.shape[1]) * cfg.dt_probe - T_PRE
for k, (t, role) in enumerate(
    zip(probe_types, ["method", "baseline", "baseline2", "truth"], strict=True)
):
    a2.plot(tt, tr_v[6, :, k] - tr_v[6, 0, k], color=plotting.COLORS[role], label=f"{t} PD")
    a2.plot(tt, tr_v[0, :, k] - tr_v[0, 0, k], color=plotting.COLORS[role], ls=":", label=f"{t} ND")
a2.set_xlabel("time from edge onset (s)")
a2.set_ylabel("V − V(settled)")
a2.legend(fontsize=7, ncol=2, loc="center right", bbox_to_anchor=(1, 0.62))
plotting.save(fig, "fly-connectome", "training_and_traces")

# %% [markdown]
# ```{glue:figure} training_and_traces
# ---
# name: fig-fly-connectome-training
# alt: >-
#   Left, the decoding loss against the training step for the trained and the random trained
#   network; right, voltage traces of the central Mi1, Mi4, Mi9 and T4a cells against time from
#   edge onset, solid for the preferred and dotted for the null direction.
# ---
# Left: training loss (flow in units of the largest speed; always predicting zero scores
# {glue:text}`zero_loss:.3f`). Right: the untrained connectome network's central Mi1, Mi4, Mi9
# and T4a voltages, relative to their settled values, for an edge moving in T4a's preferred
# direction (180°, PD) and the opposite one (ND).
# ```

# %% [markdown]
# ## Claims
#
# C1 is judged as the largest PD error over the four subtypes, counted as 180° when a
# subtype's peak response is below 1e-3 (no measurable response); C3a as the mean PD error,
# counted as 180° for a subtype whose DSI is below 0.2 (no preferred direction to speak of,
# the bound Tschopp et al.'s comparison implies for "not direction selective"); that guard
# was added after the first ci run and only makes the rule stricter. No threshold was moved
# after seeing a run.

# %%
expected = ["C1b", "C3a", "C3b", "C3c", "C4"]  # see "What held, what did not, and why"
res = ChapterResults("fly-connectome", rt, require_controls=True, expected_not_reproduced=expected)


def worst_err(s):
    return float(np.max(np.where(s["amp"] > 1e-3, s["err"], 180.0)))


def mean_err_selective(s):
    return float(np.mean(np.where(s["dsi"] >= 0.2, s["err"], 180.0)))


res.add(
    Claim(
        "C0",
        "all 65 types at R = 15: compiled connections (neurons checked in the unit tests)",
        paper="1,513,231 connections, 45,669 neurons (Lappalainen et al., Fig. 1)",
        op="in",
        threshold=(1513231, 1513231),
        measured=float(full_graph.n_edges) if full_graph.n_neurons == 45669 else 0.0,
        exact="a count of the compiled graph against the paper's count",
    )
)
res.add(
    Claim(
        "C1a",
        "untrained connectome, tau = 50 ms: largest T4a-d PD error (deg)",
        paper="PDs 180/0/90/270 (Maisak 2013) emerge (Tschopp, sec. 4)",
        op="<=",
        threshold=30.0,
        measured=worst_err(stats["connectome"]),
        control=worst_err(stats["rotate"]),
        control_label="T4 filters rotated",
    )
)
res.add(
    Claim(
        "C1b",
        "untrained connectome, fast L/Mi1/Tm3, slow Mi4/Mi9: largest PD error (deg)",
        paper="as C1a",
        op="<=",
        threshold=30.0,
        measured=worst_err(stats["fast/slow tau"]),
        control=worst_err(stats["rotate"]),
        control_label="T4 filters rotated",
    )
)
res.add(
    Claim(
        "C2a",
        "collapsed T4 filters: mean T4 DSI",
        paper="offsets carry DS (Tschopp, sec. 4)",
        op="<=",
        threshold=0.2,
        measured=float(stats["collapse"]["dsi"].mean()),
        control=float(stats["connectome"]["dsi"].mean()),
        control_label="intact connectome",
    )
)
res.add(
    Claim(
        "C2b",
        "rotated T4 filters: mean PD error (deg)",
        paper="offsets set the PD (Tschopp, sec. 4)",
        op=">=",
        threshold=45.0,
        measured=float(stats["rotate"]["err"].mean()),
        control=float(stats["connectome"]["err"].mean()),
        control_label="intact connectome",
    )
)
res.add(
    Claim(
        "C3a",
        "trained connectome: mean T4 PD error (deg; 180 where DSI < 0.2)",
        paper="known PDs after training (Tschopp, sec. 4; Lappalainen, Fig. 3)",
        op="<=",
        threshold=30.0,
        measured=mean_err_selective(stats["trained"]),
        control=mean_err_selective(stats["random trained"]),
        control_label="random wiring, same training",
    )
)
res.add(
    Claim(
        "C3b",
        "trained connectome: mean T4 DSI",
        paper="T4 DS after training (Tschopp, sec. 4)",
        op=">=",
        threshold=0.3,
        measured=float(stats["trained"]["dsi"].mean()),
        control=float(stats["random trained"]["dsi"].mean()),
        control_label="random wiring, same training",
    )
)
res.add(
    Claim(
        "C3c",
        "trained / untrained mean T4 peak response",
        paper="trained responses far above initial (book's test)",
        op=">=",
        threshold=10.0,
        measured=float(stats["trained"]["amp"].mean() / stats["connectome"]["amp"].mean()),
        control=1.0,
        control_label="untrained network",
    )
)
res.add(
    Claim(
        "C4",
        "trained connectome: ON-flash polarity correct, of Mi1 Tm3 Mi4 T4a L1 L3 Mi9",
        paper="known polarities (Lappalainen et al., Fig. 2)",
        op=">=",
        threshold=6,
        measured=polarity_agreement(polarity["trained"], POLARITY),
        control=polarity_agreement(polarity["random trained"], POLARITY),
        control_label="random wiring, same training",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()

# %%
# the numbers the text below quotes, as this run measured them
_s = stats
res.glue(
    c1_pd=", ".join(f"{t} {p:.0f}°" for t, p in zip(T4_TYPES, _s["connectome"]["pd"], strict=True)),
    c1_dsi_min=float(_s["connectome"]["dsi"].min()),
    c1_dsi_max=float(_s["connectome"]["dsi"].max()),
    c1_amp_min=float(_s["connectome"]["amp"].min()),
    c1_amp_max=float(_s["connectome"]["amp"].max()),
    c1b_pd=", ".join(
        f"{t} {p:.0f}°" for t, p in zip(T4_TYPES, _s["fast/slow tau"]["pd"], strict=True)
    ),
    c1b_amp_min=float(_s["fast/slow tau"]["amp"].min()),
    rot_dsi_mean=float(_s["rotate"]["dsi"].mean()),
    hr_dsi_mean=float(_s["Reichardt"]["dsi"].mean()),
    hr_err_max=float(_s["Reichardt"]["err"].max()),
    tr_pd=", ".join(f"{t} {p:.0f}°" for t, p in zip(T4_TYPES, _s["trained"]["pd"], strict=True)),
    tr_amp_mean=float(_s["trained"]["amp"].mean()),
    loss_first=float(np.mean([h.loss[0] for (lab, _), h in histories.items() if lab == "trained"])),
    loss_last=float(
        np.mean([np.mean(h.loss[-10:]) for (lab, _), h in histories.items() if lab == "trained"])
    ),
    pol_untrained=polarity_agreement(polarity["connectome"], POLARITY),
    zero_loss=(20.0**3 - 5.0**3) / (3 * 15.0) / (2 * 20.0**2),  # E[v^2] / (2 v_max^2), v ~ U(5, 20)
)

# %% [markdown]
# ## What held, what did not, and why
#
# **The graph (C0: {glue:text}`C0_verdict`).** Compiling the shipped connectome at R = 15
# with every cell type gives exactly the network of Lappalainen et al.: 45,669 neurons and
# 1,513,231 connections, hull filling included.
#
# **Wiring alone (C1a: {glue:text}`C1a_verdict`; C1b: {glue:text}`C1b_verdict`).** With
# every time constant at 50 ms the untrained network's central T4 cells prefer
# {glue:text}`c1_pd` against the known 180°, 0°, 90° and 270° (largest error
# {glue:text}`C1a_ours:.1f`°, DSI {glue:text}`c1_dsi_min:.2f` to {glue:text}`c1_dsi_max:.2f`),
# where rotated T4 filters miss by up to {glue:text}`C1a_control:.0f`°. The responses are
# tiny (peaks {glue:text}`c1_amp_min:.4f` to {glue:text}`c1_amp_max:.4f` above baseline) and
# depend on the operating point: the edge must start from darkness, because on a grey
# background the photoreceptor drive rectifies L1 to silence and the ON pathway carries no
# signal. With fast lamina/Mi1/Tm3 and slow Mi4/Mi9 time constants the preferred directions
# are {glue:text}`c1b_pd`, the weakest peak {glue:text}`c1b_amp_min:.5f`; a subtype below the
# 1e-3 response guard counts as a 180° error, so this variant's verdict reports whether all
# four subtypes respond with the right direction, not only the directions.
#
# **Spatial structure (C2a: {glue:text}`C2a_verdict`; C2b: {glue:text}`C2b_verdict`).**
# Moving every T4 input to the T4 cell's own column removes direction selectivity (mean DSI
# {glue:text}`C2a_ours:.3f`, against {glue:text}`C2a_control:.3f` for the intact wiring);
# rotating the filters keeps selectivity (mean DSI {glue:text}`rot_dsi_mean:.2f`) but moves
# the preferred directions by {glue:text}`C2b_ours:.0f`° on average. The Reichardt
# correlator on the same stimulus, the idealised reference, has a mean DSI of
# {glue:text}`hr_dsi_mean:.2f` with errors up to {glue:text}`hr_err_max:.0f`°, to set beside
# the untrained connectome's T4 cells (mean DSI {glue:text}`C2a_control:.2f`).
#
# **Training (C3a: {glue:text}`C3a_verdict`; C3b: {glue:text}`C3b_verdict`; C3c:
# {glue:text}`C3c_verdict`).** The short ci training moved the decoding loss from
# {glue:text}`loss_first:.3f` to {glue:text}`loss_last:.3f` ({glue:text}`zero_loss:.3f` for always
# answering zero): the readout did not learn the flow in so few steps, and the probed tuning after
# training ({glue:text}`tr_pd`, mean DSI {glue:text}`C3b_ours:.2f`, mean peak
# {glue:text}`tr_amp_mean:.4f`, {glue:text}`C3c_ours:.1f` times the untrained one) says how
# far the parameters drifted without a useful gradient, not what task training does; the
# randomly wired control, trained alike, reaches a mean DSI of {glue:text}`C3b_control:.2f`
# and a mean PD error of {glue:text}`C3a_control:.0f`° under the same rule. The paper's
# training (Sintel optic flow, 250,000 iterations, an activity penalty that keeps responses
# near an operating point) is far beyond two CPU cores; these claims are listed as not
# reproduced at ci and are the ones the full profile is for.
#
# **Polarity (C4: {glue:text}`C4_verdict`).** After training, a full-field ON flash from
# darkness moves {glue:text}`C4_ours:.0f` of the seven ON-pathway types in their known
# direction (the randomly wired control {glue:text}`C4_control:.0f`, the untrained connectome
# {glue:text}`pol_untrained:.0f`). Seven types and one seed make this a coarse count, where
# one type decides the verdict, and the network behind it is the barely trained one of C3,
# not the paper's task-optimised ensemble; the untrained count shows how much the wiring's
# signs give alone.
