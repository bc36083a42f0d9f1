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
# # Learning-guided SEM with active acquisition
#
# **Paper.** L. Mi, H. Wang, Y. Meirovitch, R. Schalek, S. C. Turaga, J. W. Lichtman,
# A. D. T. Samuel, N. Shavit, *Learning Guided Electron Microscopy with Active Acquisition*,
# MICCAI 2020, LNCS 12265, pp. 77–87 ([arXiv:2101.02746](https://arxiv.org/abs/2101.02746)).
# **Follow-up.** Y. Meirovitch, C. F. Park, L. Mi et al., *SmartEM: machine-learning guided
# electron microscopy*, bioRxiv 2023.10.05.561103 (the same idea on a commercial SEM).
#
# A scanning electron microscope builds an image pixel by pixel, dwelling a time $t$ on each;
# the electron counts are Poisson, so the signal-to-noise ratio grows as $\sqrt t$. Connectomics
# needs petavoxels, and acquisition time is the bottleneck. Most pixels (cytoplasm) are easy;
# a few (faint or thin membranes) decide whether the segmentation is right. The paper therefore
# scans **fast** everywhere, lets a network predict where that cheap image will cause errors,
# chooses a small set of pixels that trades predicted error against spatial diversity (a
# weighted determinantal point process, WDPP), **rescans** them slowly, fuses and segments.
#
# **What the paper claims.** Its abstract: collection of connectomic data sets is sped up "by
# up to an order of magnitude" at matched downstream quality; SmartEM's abstract reports about
# 7-fold on real instruments. The figure values of the MICCAI paper (error-prediction quality,
# membrane and segmentation quality against time for WDPP, top-k and random rescans) are not
# reproduced here number by number; the chapter checks the claims behind them on synthetic
# tissue: at equal time a learned non-uniform scan beats a uniform one (C1); the learned
# saliency beats random rescans (C2); the speed-up at equal quality (C3); the error predictor
# ranks errors well (C4); the WDPP covers more distinct errors than top-k (C5); and the
# acquisition model has Poisson noise (C6).
#
# **What is ours.** The paper used real mouse-cortex SEM and a low-resolution first pass; its
# error network was never released. Here the first pass is a **short-dwell** scan (as in
# SmartEM), the tissue is synthetic, the error predictor and its target are our
# reconstruction, and the WDPP is approximated by the greedy MAP algorithm of Chen, Zhang &
# Zhou (NeurIPS 2018), a deterministic stand-in for the paper's exact sampler.
#
# **How the claims are judged.** Every claim is judged twice by the same rule: on our value and
# on a *control*, a deliberately wrong answer of the same kind (an untrained error predictor,
# random rescans, noise that does not depend on dwell). A claim whose control passes too is
# *inconclusive*.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` uses 64 training and 16 test images of
# 128 × 128 px and trains each network for 250 steps on two CPU cores; `full` uses 512 and 64
# images of 256 × 256 px, a 3-level U-Net and 3000 steps, and runs the WDPP up to ρ = 0.1.

# %%
from concurrent.futures import Future

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import expand_labels
from sklearn.metrics import roc_curve

from neuroinverse import plotting
from neuroinverse.inference import (
    average_dwell,
    components_hit,
    dwell_scans,
    error_batches,
    error_target,
    fit_pixel_classifier,
    fuse_rescan,
    membrane_batches,
    pixel_auroc,
    predict_maps,
    rescan_masks,
    segment_and_score,
    slow_equivalent_speedup,
    speedup_at_equal_quality,
    wdpp_rescan,
)
from neuroinverse.models import ErrorPredictor, UNet
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup
from neuroinverse.simulators import em_tissue_batch, point_scan

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        n_train=64,
        n_test=16,
        size=128,
        depth=2,
        base=16,
        steps=250,
        wdpp_max_rho=1 / 16,
        c1_max=0.9,
        c2_min=0.10,
        c3_min=2.0,
        c4_min=0.80,
    ),
    full=dict(
        n_train=512,
        n_test=64,
        size=256,
        depth=3,
        base=32,
        steps=3000,
        wdpp_max_rho=0.1,
        c1_max=0.8,
        c2_min=0.20,
        c3_min=3.0,
        c4_min=0.88,
    ),
)
T_LO, T_HI = 50.0, 800.0  # ns: the fast and the slow pass
ETA = 0.3  # e⁻ per ns per unit intensity, calibrated once (below)
RHO_MAIN = 1 / 16  # τ = 50 + 800/16 = 100 ns/px
RHOS = (0.02, 0.05, RHO_MAIN, 0.1, 0.2)
SWEEP = (50, 75, 100, 150, 200, 300, 400, 600, 800)  # uniform dwell times, ns
TISSUE = dict(pixel_nm=8.0, membrane_nm=(8.0, 20.0))  # ~55 cells per 128² px, walls 1–2.5 px
plotting.apply_style()


def run_now(fn, *args):
    """``fn(*args)`` now, as a finished future (the stand-in for ``background`` on a GPU)."""
    done = Future()
    done.set_result(fn(*args))
    return done


print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")

# %% [markdown]
# ## Tissue and acquisition
#
# The synthetic tissue (`em_tissue`) has curved Voronoi cells separated by dark membranes 1 to
# 2.5 px wide (8 nm pixels), mitochondria and clusters of small dark vesicles that mimic
# membranes. The ground-truth segmentation is the cell map grown over the membranes, so every
# pixel belongs to a cell. A scan at dwell $t$ records $n \sim \mathrm{Poisson}(\eta\, t\, I)$
# electrons per pixel after a Gaussian probe blur of 0.8 px, and reports $\hat I = n/(\eta t)$.
# The yield $\eta$ = 0.3 e⁻/ns was calibrated once, before any policy was compared, so that the
# uniform 50 ns scan has at least twice the VI of the 800 ns scan and the 800 ns scan is close
# to the clean image (the checks are printed below). A uniform scan costs $t$ per pixel; a fast
# scan plus a rescan of a fraction $\rho$ costs $\tau = t_\mathrm{lo} + \rho\, t_\mathrm{hi}$
# (no beam-jump overhead).

# %%
S = (cfg.size, cfg.size)
train_img, train_lab = em_tissue_batch(cfg.n_train, S, seed=[rt.seed, 1], **TISSUE)
test_img, test_lab = em_tissue_batch(cfg.n_test, S, seed=[rt.seed, 2], **TISSUE)
gt = np.stack([expand_labels(lab, 10) for lab in test_lab])  # every pixel in a cell
cross = ndimage.generate_binary_structure(2, 1)
membranes = np.stack([ndimage.binary_dilation(lab == 0, cross) for lab in train_lab])
scan = lambda imgs, t, s: dwell_scans(imgs, t, photons_per_ns=ETA, seed=s)  # noqa: E731
bank = np.stack([scan(train_img, t, 100 + i) for i, t in enumerate((50, 100, 200, 400, 800))])
print(
    f"{cfg.n_train} training and {cfg.n_test} test images of {S[0]}×{S[1]} px; "
    f"cells per test image {np.mean([len(np.unique(g)) for g in gt]):.0f}; "
    f"membrane target fraction {membranes.mean():.3f}"
)

# %% [markdown]
# ## The membrane detector D and the error predictor E
#
# D (the book's U-Net, {glue:text}`d_params` parameters) maps an image to membrane probability.
# It serves every policy, so it is trained on scans at 50, 100, 200, 400 and 800 ns and on
# random fusions of the 50 and 800 ns scans (a rescanned image has noise that varies from pixel
# to pixel). Segmentation: 4-connected components of {D < 0.5}, those under 10 px dropped,
# grown by 3 px over the membranes. Scores: variation of information (VI, bits, split + merge)
# and adapted Rand error (ARAND) against the ground truth.
#
# E sees the fast scan and D's map on it and predicts the binarised error
# $e = \mathbb 1[(D(x_\mathrm{fast}) > 0.5) \oplus (D(x_\mathrm{slow}) > 0.5)]$, dilated by
# 1 px, with D frozen and fresh fast and slow scans of the training images. It is trained with
# binary cross-entropy weighted by $(1-\bar p)/\bar p$ for the error fraction $\bar p$.

# %%
torch.manual_seed(rt.seed)
D = UNet(1, 1, base_channels=cfg.base, depth=cfg.depth).to(rt.device)
hist_d = fit_pixel_classifier(
    D,
    membrane_batches(bank, bank[0], bank[-1], membranes),
    n_steps=cfg.steps,
    seed=rt.seed,
    desc="membrane detector D",
)
# the uniform sweep (below) runs on the second core while E trains
later = background if rt.device.type == "cpu" else run_now  # a GPU net stays in this process
uniform_jobs = {
    t: later(segment_and_score, D, scan(test_img, t, 1000 + i), gt) for i, t in enumerate(SWEEP)
}
fast_tr, slow_tr = scan(train_img, T_LO, 200), scan(train_img, T_HI, 201)
pm_fast_tr = predict_maps(D, fast_tr)
err_tr = error_target(pm_fast_tr, predict_maps(D, slow_tr)).astype(np.float32)
p_bar = float(err_tr.mean())
torch.manual_seed(rt.seed + 1)
E_untrained = ErrorPredictor(base_channels=cfg.base, depth=cfg.depth).to(rt.device)
E = ErrorPredictor(base_channels=cfg.base, depth=cfg.depth).to(rt.device)
E.load_state_dict(E_untrained.state_dict())
hist_e = fit_pixel_classifier(
    E,
    error_batches(fast_tr, pm_fast_tr, err_tr),
    n_steps=cfg.steps,
    pos_weight=(1 - p_bar) / p_bar,
    seed=rt.seed + 1,
    desc="error predictor E",
)

# %% tags=["nbval-check-output"]
print(
    f"D: BCE {hist_d.loss[0]:.3f} -> {np.mean(hist_d.loss[-25:]):.3f}; "
    f"E: weighted BCE {hist_e.loss[0]:.3f} -> {np.mean(hist_e.loss[-25:]):.3f}; "
    f"training error fraction {p_bar:.3f}"
)

# %% [markdown]
# ## Uniform scans at every dwell time
#
# The main baseline: the same D and segmentation on uniform scans at nine dwell times (run on
# the second core while E trained), and on the clean image.

# %%
uniform = {t: job.result() for t, job in uniform_jobs.items()}
vi_u = np.array([uniform[t][0].mean() for t in SWEEP])
arand_u = np.array([uniform[t][1].mean() for t in SWEEP])
vi_clean = segment_and_score(D, test_img, gt)[0].mean()

# %% tags=["nbval-check-output"]
print("dwell (ns):  " + " ".join(f"{t:6d}" for t in SWEEP))
print("VI (bits):   " + " ".join(f"{v:6.3f}" for v in vi_u))
print("ARAND:       " + " ".join(f"{v:6.3f}" for v in arand_u))
print(
    f"calibration: VI(50)/VI(800) = {vi_u[0] / vi_u[-1]:.2f} (target >= 2); "
    f"VI(800) = {vi_u[-1]:.3f} vs clean {vi_clean:.3f}"
)

# %% [markdown]
# ## The smart scans
#
# On each test image: one fast scan at 50 ns and one slow scan at 800 ns (a rescan of a pixel
# set $S$ reads $x_\mathrm{slow}[S]$; the fused image replaces those pixels, SmartEM's fusion).
# The rescan budget $k = \rho N$ is the same for every policy:
#
# * **top-k**: the $k$ largest predicted errors (E's map);
# * **WDPP**: greedy MAP of the weighted DPP with quality $q = (p/\max p)^\lambda$, λ = 1, and
#   similarity $\exp(-\lVert x_i-x_j\rVert^2/\sigma^2)$, σ = 0.1 of a 64-px window, per 64 × 64
#   window over the top $4k$ candidates, $k$ shared among windows in proportion to $\sum p$
#   (at ci only for ρ ≤ 1/16, where its cost is small);
# * **random**: $k$ uniform positions; **darkest**: the $k$ darkest fast-scan pixels (SmartEM's
#   intensity threshold); **untrained E**: top-k of an untrained predictor (the control);
# * **oracle**: top-k of the true error $e$ (ties at random).

# %%
x_fast, x_slow = scan(test_img, T_LO, 300), scan(test_img, T_HI, 301)
pm_fast = predict_maps(D, x_fast)
err_test = error_target(pm_fast, predict_maps(D, x_slow))
p_err = predict_maps(E, x_fast, pm_fast)
p_untrained = predict_maps(E_untrained, x_fast, pm_fast)
scores = {
    "top-k": p_err,
    "untrained E": p_untrained,
    "oracle": err_test.astype(float),
    "darkest": -x_fast,
}
smart, masks = {}, {}
for rho in RHOS:
    for name, sc in scores.items():
        masks[name, rho] = rescan_masks("topk", sc, rho, seed=rt.seed)
    masks["random", rho] = rescan_masks("random", p_err, rho, seed=rt.seed)
    if rho <= cfg.wdpp_max_rho + 1e-12:
        masks["WDPP", rho] = rescan_masks("wdpp", p_err, rho)
jobs = {}  # the baselines are scored on the second core
for (name, rho), m in masks.items():
    fused = np.stack([fuse_rescan(f, s, k) for f, s, k in zip(x_fast, x_slow, m, strict=True)])
    if name in ("random", "darkest", "untrained E"):
        jobs[name, rho] = later(segment_and_score, D, fused.astype(np.float32), gt)
    else:
        smart[name, rho] = segment_and_score(D, fused.astype(np.float32), gt)
smart.update({key: job.result() for key, job in jobs.items()})

# %% tags=["nbval-check-output"]
POLICIES = ("top-k", "WDPP", "random", "oracle", "darkest", "untrained E")
print("rho     tau  " + " ".join(f"{p:>11s}" for p in POLICIES))
for rho in RHOS:
    row = [
        f"{smart[p, rho][0].mean():11.3f}" if (p, rho) in smart else f"{'–':>11s}" for p in POLICIES
    ]
    print(f"{rho:.4f} {average_dwell(T_LO, T_HI, rho):5.0f}  " + " ".join(row))

# %% [markdown]
# ## The pipeline on one test image
#
# {numref}`fig-active-sem-pipeline` follows one test image through the pipeline.

# %% tags=["remove-output"]
i0, r0 = 0, 0.05
fig, ax = plotting.figure(2, 4, width=7, height=3.9)
panels = [
    (test_img[i0], "clean image", "gray"),
    (x_fast[i0], "fast scan, 50 ns", "gray"),
    (p_err[i0], "predicted error p", "magma"),
    (None, "chosen pixels, ρ = 0.05", None),
    (np.where(masks["top-k", r0][i0], x_slow[i0], x_fast[i0]), "fused (top-k)", "gray"),
    (uniform[50][2][i0], "segmentation, 50 ns", "tab20"),
    (smart["top-k", r0][2][i0], "segmentation, fused", "tab20"),
    (uniform[800][2][i0], "segmentation, 800 ns", "tab20"),
]
for a, (img, title, cmap) in zip(ax.ravel(), panels, strict=True):
    if img is None:
        a.imshow(x_fast[i0], cmap="gray", vmin=0, vmax=1.2)
        for name, col in (
            ("top-k", plotting.COLORS["method"]),
            ("WDPP", plotting.COLORS["baseline"]),
        ):
            yy, xx = np.nonzero(masks[name, r0][i0])
            a.plot(xx, yy, ".", ms=1.5, color=col, label=name)
        a.legend(loc="lower right", fontsize=7, markerscale=4, frameon=True)
    else:
        a.imshow(
            img % 20 if cmap == "tab20" else img,
            cmap=cmap,
            vmin=0 if cmap == "gray" else None,
            vmax=1.2 if cmap == "gray" else None,
            interpolation="nearest",
        )
    a.set_title(title, fontsize=8)
    a.set_axis_off()
plotting.save(fig, "active-sem", "fig1_pipeline")

# %% [markdown]
# ```{glue:figure} fig1_pipeline
# ---
# name: fig-active-sem-pipeline
# alt: >-
#   Eight image panels in two rows: the clean synthetic EM image, its 50 ns scan, the predicted
#   error map, the pixels chosen by top-k and WDPP at a 5 % budget,
#   the fused image, and the segmentations of the fast, fused and slow scans.
# ---
# One test image. The predicted error concentrates on the cell walls; top-k spends the 5 %
# budget on the strongest of them in clusters, the WDPP spreads it. Segment colours repeat.
# ```

# %% [markdown]
# ## VI against time per pixel
#
# The uniform curve is interpolated linearly in $\log t$; a smart scan's speed-up is the
# uniform dwell $t^*$ with the same VI divided by its own time $\tau$ (C3). If no uniform
# dwell up to 800 ns reaches the smart VI, $t^*$ is capped at 800 ns (a lower bound).

# %%
tau = {rho: average_dwell(T_LO, T_HI, rho) for rho in RHOS}
speed = {
    (p, rho): speedup_at_equal_quality(SWEEP, vi_u, smart[p, rho][0].mean(), tau[rho])
    for (p, rho) in smart
}

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 2, width=7, height=2.9)
styles = {
    "top-k": ("method", "o-"),
    "WDPP": ("reference", "s-"),
    "random": ("baseline2", "^-"),
    "oracle": ("truth", "v--"),
    "darkest": ("data", "x:"),
}
for k, (vals, ylabel) in enumerate(((0, "VI (bits)"), (1, "adapted Rand error"))):
    a = ax[0, k]
    a.plot(
        SWEEP,
        vi_u if vals == 0 else arand_u,
        "o-",
        color=plotting.COLORS["baseline"],
        label="uniform",
    )
    for p, (col, fmt) in styles.items():
        rr = [r for r in RHOS if (p, r) in smart]
        a.plot(
            [tau[r] for r in rr],
            [smart[p, r][vals].mean() for r in rr],
            fmt,
            color=plotting.COLORS[col],
            label=p,
            ms=4,
        )
    a.axhline(
        (vi_u if vals == 0 else arand_u)[-1], color="gray", lw=0.8, ls="--", label="uniform 800 ns"
    )
    a.set_xscale("log")
    a.set_xticks([50, 100, 200, 400, 800], labels=["50", "100", "200", "400", "800"])
    a.minorticks_off()
    a.set_xlabel("time per pixel τ (ns/px)")
    a.set_ylabel(ylabel)
for r in RHOS:
    s = speed["top-k", r]
    if s.speedup > 1:
        ax[0, 0].annotate(
            "",
            xy=(s.time, smart["top-k", r][0].mean()),
            xytext=(s.t_star, smart["top-k", r][0].mean()),
            arrowprops=dict(arrowstyle="->", color=plotting.COLORS["method"]),
        )
ax[0, 0].legend(fontsize=7, ncol=2)
plotting.save(fig, "active-sem", "fig2_vi_time")

# %% [markdown]
# ```{glue:figure} fig2_vi_time
# ---
# name: fig-active-sem-vi-time
# alt: >-
#   Two panels against time per pixel on a log axis: VI (left) and adapted Rand error (right) of
#   uniform scans from 50 to 800 ns and of fast scans plus rescans chosen by top-k, WDPP, random,
#   oracle and darkest-pixel policies; a dashed line marks the uniform 800 ns value.
# ---
# Segmentation error against time per pixel: uniform scans (blue) and a 50 ns scan plus a rescan
# of a fraction ρ at 800 ns, τ = 50 + 800 ρ. A smart point below the uniform curve is a speed-up
# (arrows: from the equal-quality uniform dwell to the smart scan's time).
# ```

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 1, width=7, height=2.6)
for p, (col, fmt) in styles.items():
    rr = [r for r in RHOS if (p, r) in smart]
    ax[0, 0].plot(
        rr, [speed[p, r].speedup for r in rr], fmt, color=plotting.COLORS[col], label=p, ms=4
    )
ax[0, 0].axhline(
    10, color=plotting.COLORS["reference"], ls=":", lw=1, label="paper: up to 10× (abstract)"
)
ax[0, 0].axhline(7, color="gray", ls=":", lw=1, label="SmartEM: ≈ 7× (abstract)")
ax[0, 0].axhline(1, color="black", lw=0.6)
ax[0, 0].set_xscale("log")
ax[0, 0].set_yscale("log")
ax[0, 0].set_xlabel("rescan fraction ρ")
ax[0, 0].set_ylabel("speed-up t*/τ at equal VI")
ax[0, 0].legend(fontsize=7, ncol=2)
plotting.save(fig, "active-sem", "fig3_speedup")

# %% [markdown]
# ```{glue:figure} fig3_speedup
# ---
# name: fig-active-sem-speedup
# alt: >-
#   Speed-up at equal VI against rescan fraction, both on log axes, for top-k, WDPP, random,
#   oracle and darkest-pixel rescans, with horizontal marks at 10 (the paper) and 7 (SmartEM)
#   and a line at 1.
# ---
# Speed-up at equal VI against the rescan fraction. Below the line at 1 a uniform scan of the
# same time is better; the paper's "up to 10×" and SmartEM's "≈ 7×" are drawn for reference
# (real tissue, other protocols).
# ```

# %% [markdown]
# ## The error predictor, and the quality exponent of the WDPP
#
# E's pixel-wise ROC on the test images against the true error, beside the untrained E; and the
# effect of λ on where the WDPP puts a 2 % budget in one 64 × 64 window. A large λ sharpens the
# quality term, which pulls the points towards the strongest predicted errors, as top-k does;
# how much depends on how much the quality varies inside the candidate pool.

# %%
auroc = pixel_auroc(p_err, err_test)
auroc_untrained = pixel_auroc(p_untrained, err_test)
win = p_err[i0, :64, :64]
lam_masks = {lam: wdpp_rescan(win, 0.02, window=64, lam=lam) for lam in (1, 8)}

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 3, width=7, height=2.4)
for pp, name, col in ((p_err, "trained E", "method"), (p_untrained, "untrained E", "data")):
    fpr, tpr, _ = roc_curve(err_test.ravel(), pp.ravel())
    ax[0, 0].plot(fpr, tpr, color=plotting.COLORS[col], label=name)
ax[0, 0].plot([0, 1], [0, 1], color="gray", lw=0.6, ls="--")
ax[0, 0].set_xlabel("false-positive rate")
ax[0, 0].set_ylabel("true-positive rate")
ax[0, 0].legend(fontsize=7)
for a, (lam, m) in zip(ax[0, 1:], lam_masks.items(), strict=True):
    a.imshow(win, cmap="magma", vmin=0, vmax=1)
    yy, xx = np.nonzero(m)
    a.plot(xx, yy, "o", ms=2.5, mfc="none", color="cyan")
    a.set_title(f"WDPP, λ = {lam}", fontsize=8)
    a.set_axis_off()
plotting.save(fig, "active-sem", "fig4_roc_lambda")

# %% [markdown]
# ```{glue:figure} fig4_roc_lambda
# ---
# name: fig-active-sem-roc
# alt: >-
#   Left, ROC curves of the trained and the untrained error predictor against the true error
#   pixels, with the diagonal. Middle and right, a 64 by 64 window of the predicted error map
#   with the 82 pixels chosen by the WDPP at quality exponent 1 and 8 circled.
# ---
# Left: the error predictor's ROC (AUROC {glue:text}`C4_ours:.3f`; untrained
# {glue:text}`C4_control:.3f`). Right: the WDPP's choice in one window at λ = 1 and 8; the two
# choices share {glue:text}`lam_overlap_pct:.0f` % of their pixels (the candidates, the top 4k
# pixels of p, have similar p here, so λ moves only part of the choice).
# ```

# %% [markdown]
# ## Claims
#
# All VIs are means over the test images. The ci thresholds are the book's targets for this
# book, fixed before the run; the full thresholds are stricter.

# %%
flat = np.full((512, 512), 0.65)  # 2.6e5 pixels: the sampling error of a variance is ~0.3 %
var_t = {
    t: point_scan(
        flat, dwell_us=t / 1000, photons_per_us=ETA * 1000, blur_px=0.8, detector_sigma=0.0, seed=7
    ).var()
    * t
    for t in (T_LO, T_HI)
}
rng_c6 = np.random.default_rng(7)  # control: noise of a fixed std, not Poisson in the dwell
var_t_ctrl = {t: (flat + 0.2 * rng_c6.standard_normal(flat.shape)).var() * t for t in (T_LO, T_HI)}
vi_s = {
    p: np.array([smart[p, r][0].mean() if (p, r) in smart else np.nan for r in RHOS])
    for p in POLICIES
}
C3_RHOS = (0.02, 0.05, 0.1, 0.2)
best_speed = {p: max(speed[p, r].speedup for r in C3_RHOS) for p in ("top-k", "random")}
slow_eq, rho_min = slow_equivalent_speedup(RHOS, vi_s["top-k"], vi_u[-1], t_lo=T_LO, t_hi=T_HI)
vi_u100 = vi_u[SWEEP.index(100)]
hit = {
    p: np.mean([components_hit(e, m) for e, m in zip(err_test, masks[p, 0.05], strict=True)])
    for p in ("top-k", "WDPP", "random")
    if (p, 0.05) in masks
}
vi = {p: smart[p, RHO_MAIN][0].mean() for p in POLICIES if (p, RHO_MAIN) in smart}

res = ChapterResults(
    "active-sem", rt, require_controls=True, expected_not_reproduced=("C1", "C2b", "C3")
)
res.add(
    Claim(
        "C1",
        "VI(E + top-k, ρ = 1/16, τ = 100 ns/px) / VI(uniform 100 ns)",
        paper="non-uniform beats uniform at equal time (abstract)",
        op="<=",
        threshold=cfg.c1_max,
        measured=vi["top-k"] / vi_u100,
        control=vi["random"] / vi_u100,
        control_label="random rescan of the same budget",
    )
)
res.add(
    Claim(
        "C2",
        "ρ = 1/16: 1 − VI(E + top-k) / VI(random rescan)",
        paper="learned saliency beats random (Sec. 3, rescan comparisons)",
        op=">=",
        threshold=cfg.c2_min,
        measured=1 - vi["top-k"] / vi["random"],
        control=1 - vi["untrained E"] / vi["random"],
        control_label="top-k of an untrained E",
    )
)
res.add(
    Claim(
        "C2b",
        "ρ = 1/16: VI(oracle top-k) − VI(E + top-k)",
        paper="the true error is an upper bound (book's check)",
        op="<=",
        threshold=0.0,
        measured=vi["oracle"] - vi["top-k"],
        control=vi["random"] - vi["top-k"],
        control_label="random rescan in place of the oracle",
    )
)
res.add(
    Claim(
        "C3",
        "largest speed-up t*/τ at equal VI over ρ ∈ {0.02, 0.05, 0.1, 0.2} (E + top-k)",
        paper="up to an order of magnitude (abstract); ≈ 7× (SmartEM abstract)",
        op=">=",
        threshold=cfg.c3_min,
        measured=best_speed["top-k"],
        control=best_speed["random"],
        control_label="random rescans",
    )
)
res.add(
    Claim(
        "C4",
        "pixel-wise AUROC of E against the true error, test images",
        paper="binarised error estimation (Sec. 2.2)",
        op=">=",
        threshold=cfg.c4_min,
        measured=auroc,
        control=auroc_untrained,
        control_label="the untrained E",
    )
)
res.add(
    Claim(
        "C5",
        "ρ = 0.05: fraction of error components hit, WDPP − top-k",
        paper="diversity covers more errors (Sec. 2.3)",
        op=">=",
        threshold=0.05,
        measured=hit["WDPP"] - hit["top-k"] if rt.profile == "full" else None,
        control=hit["random"] - hit["top-k"] if rt.profile == "full" else None,
        control_label="random rescan in place of the WDPP (spread without saliency)",
        profiles=("full",),
    )
)
res.add(
    Claim(
        "C5b",
        "ρ = 0.05: VI(WDPP) − VI(E + top-k)",
        paper="diversity does not cost quality (Sec. 3, WDPP vs top-k)",
        op="<=",
        threshold=0.02,
        measured=smart["WDPP", 0.05][0].mean() - smart["top-k", 0.05][0].mean()
        if rt.profile == "full"
        else None,
        control=smart["random", 0.05][0].mean() - smart["top-k", 0.05][0].mean()
        if rt.profile == "full"
        else None,
        control_label="random rescan in place of the WDPP",
        profiles=("full",),
    )
)
res.add(
    Claim(
        "C6",
        "flat I = 0.65: |var(Î)·t at 800 ns / var(Î)·t at 50 ns − 1|",
        paper="Poisson counts: SNR ∝ √t (Sec. 1)",
        op="<=",
        threshold=0.05,
        measured=abs(var_t[T_HI] / var_t[T_LO] - 1),
        control=abs(var_t_ctrl[T_HI] / var_t_ctrl[T_LO] - 1),
        control_label="dwell-independent Gaussian noise",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %% tags=["nbval-ignore-output"]
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()

# %%
# the numbers the text below quotes, as this run measured them
res.glue(
    d_params=sum(p.numel() for p in D.parameters()),
    p_bar_pct=100 * p_bar,
    vi_50=float(vi_u[0]),
    vi_100=float(vi_u100),
    vi_800=float(vi_u[-1]),
    vi_clean=float(vi_clean),
    vi_topk=float(vi["top-k"]),
    vi_random=float(vi["random"]),
    vi_oracle=float(vi["oracle"]),
    vi_wdpp=float(vi["WDPP"]),
    vi_dark=float(vi["darkest"]),
    vi_topk_02=float(vi_s["top-k"][-1]),
    tau_02=float(tau[0.2]),
    speed_topk_02=float(speed["top-k", 0.2].speedup),
    slow_eq_text="no budget up to 0.2 reaches it"
    if np.isnan(slow_eq)
    else f"ρ_min = {rho_min:.2f}, a slow-equivalent speed-up of {slow_eq:.1f}×",
    lam_overlap_pct=100 * float((lam_masks[1] & lam_masks[8]).sum() / lam_masks[1].sum()),
    vi_wdpp_05=float(smart["WDPP", 0.05][0].mean()),
    vi_topk_05=float(smart["top-k", 0.05][0].mean()),
    hit_topk=float(hit["top-k"]),
    hit_wdpp=float(hit["WDPP"]),
    hit_random=float(hit["random"]),
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (the rules and controls are in the table).
#
# **The acquisition model and the error predictor.** The noise is Poisson in the dwell time
# (C6: {glue:text}`C6_verdict`; a dwell-independent noise misses by
# {glue:text}`C6_control:.2f`). Uniform scans give VI {glue:text}`vi_50:.2f` bits at 50 ns,
# {glue:text}`vi_100:.2f` at 100 ns and {glue:text}`vi_800:.2f` at 800 ns (clean image:
# {glue:text}`vi_clean:.2f`). E ranks the true error pixels with AUROC
# {glue:text}`C4_ours:.3f`, against {glue:text}`C4_control:.3f` untrained (C4:
# {glue:text}`C4_verdict`).
#
# **Learned saliency (C2).** At ρ = 1/16 the rescan chosen by E gives VI
# {glue:text}`vi_topk:.3f`, random rescans {glue:text}`vi_random:.3f`, the darkest pixels
# {glue:text}`vi_dark:.3f`, the WDPP {glue:text}`vi_wdpp:.3f` (C2: {glue:text}`C2_verdict`).
# The "oracle", top-k of the true pixel-wise error, gives {glue:text}`vi_oracle:.3f` (C2b:
# {glue:text}`C2b_verdict`): with the pixel-wise XOR target about
# {glue:text}`p_bar_pct:.0f` % of the training pixels are "errors", spread along the walls
# ({numref}`fig-active-sem-pipeline`), so a random draw among them is not the best rescan,
# and a learned map that also ranks inside that set can beat it. Spreading the budget (the
# WDPP's diversity term) did not help either at this noise level.
#
# **Equal time (C1, C3).** At τ = 100 ns/px the smart scan gives VI {glue:text}`vi_topk:.3f`
# against {glue:text}`vi_100:.3f` for the uniform 100 ns scan (ratio {glue:text}`C1_ours:.2f`,
# C1: {glue:text}`C1_verdict`); the largest speed-up at equal VI is
# {glue:text}`C3_ours:.2f`× (C3: {glue:text}`C3_verdict`; random rescans
# {glue:text}`C3_control:.2f`×). Against the slow scan itself (the smallest ρ whose VI is within
# 10 % of the uniform 800 ns scan's): {glue:text}`slow_eq_text`.
# On this synthetic tissue the 50 ns scan is wrong *everywhere* a little, not in a few places:
# the errors of the fast segmentation are spread over all walls (the error target covers a
# large fraction of the image), and rescanning single pixels cannot remove noise from their
# unrescanned neighbours, whose values D also reads. Spending the same time on a uniform scan
# lowers the noise of every pixel, which here is worth more. The paper's order-of-magnitude
# speed-up relies on real tissue where the hard places are rare and the fast pass is a good
# low-resolution image; the book does not reproduce it at ci. What would change the balance
# (rescanning dilated regions as SmartEM does, a detector given the dwell map, the paper's
# low-resolution first pass) is not tried here.
#
# **Diversity (C5, full profile).** At ρ = 0.05 the WDPP hits
# {glue:text}`hit_wdpp:.2f` of the connected error components, top-k
# {glue:text}`hit_topk:.2f` and random rescans {glue:text}`hit_random:.2f`, but its VI is
# {glue:text}`vi_wdpp_05:.3f` against {glue:text}`vi_topk_05:.3f` for top-k (C5b asks for at
# most 0.02 more): covering more error blobs is not the same as fixing the segmentation. Both
# are judged at the full profile only.
