"""Probing and training the connectome network of the fly motion pathway.

Tuning to moving edges and polarity to flashes (Lappalainen et al., Nature 2024, Figs. 2-4),
training on motion decoding through the book's one loop (Tschopp et al., arXiv 1806.04793,
sec. 3: connectome-initialised networks trained by backpropagation through time), and a
Hassenstein-Reichardt correlator on the same stimulus as an idealised direction-selective
reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..simulators.hexlattice import HexLattice, full_field_flash, moving_edges, moving_textures
from ..training import Clipping, fit

__all__ = [
    "edge_tuning",
    "flash_polarity",
    "reichardt_tuning",
    "MotionDecoder",
    "train_motion_decoder",
]


def _settle(net, stimulus: torch.Tensor, dt: float, n_settle: int) -> torch.Tensor:
    """Voltages after ``n_settle`` steps of the stimulus's first frame (no gradient)."""
    with torch.no_grad():
        first = stimulus[:, :1].expand(-1, n_settle, -1)
        return net(first, dt=dt)[:, -1]


def edge_tuning(
    net,
    graph,
    lattice: HexLattice,
    *,
    cell_types,
    angles_deg,
    speed: float,
    dt: float,
    t_pre: float,
    t_stim: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Peak response above the settled baseline of the central-column neurons to ON edges.

    Returns:
        ``responses`` of shape ``(n_types, n_angles)`` and voltage traces
        ``(n_angles, T, n_types)``.
    """
    stim = moving_edges(
        lattice,
        angles_deg=angles_deg,
        speed=speed,
        dt=dt,
        t_pre=t_pre,
        t_stim=t_stim,
        background=0.0,
    )
    stim = stim.to(net.edge_src.device)
    idx = [graph.neuron(t) for t in cell_types]
    n_pre = round(t_pre / dt)
    with torch.no_grad():
        v = net(stim, dt=dt)[:, :, idx].cpu()
    base = v[:, n_pre - 1 : n_pre]
    resp = (v[:, n_pre:] - base).clamp(min=0).amax(1)
    return resp.numpy().T.astype(float), v.numpy()


def flash_polarity(net, graph, lattice: HexLattice, *, cell_types, dt: float) -> dict[str, float]:
    """Mean voltage change of each central neuron during a 0.5 s full-field ON flash (dark to
    bright, the operating point of :func:`edge_tuning`)."""
    stim = full_field_flash(lattice, dt=dt, t_pre=0.5, t_on=0.5, t_post=0.0, background=0.0)[
        None
    ].to(net.edge_src.device)
    n_pre = round(0.5 / dt)
    with torch.no_grad():
        v = net(stim, dt=dt)[0].cpu()
    return {
        t: float((v[n_pre:, graph.neuron(t)] - v[n_pre - 1, graph.neuron(t)]).mean())
        for t in cell_types
    }


def reichardt_tuning(
    lattice: HexLattice,
    *,
    preferred_deg: float,
    angles_deg,
    speed: float,
    dt: float,
    t_pre: float,
    t_stim: float,
    tau: float = 0.05,
) -> np.ndarray:
    """Peak rectified output of a Hassenstein-Reichardt correlator at the central column.

    Opponent half-detectors ``LP(s_c) s_n - s_c LP(s_n)`` compare the central column ``c``
    with the neighbour ``n`` lying in direction ``preferred_deg`` or, when none does (hex
    neighbours sit at odd multiples of 30 degrees), with the two neighbours 30 degrees either
    side of it, summed, with a first-order low-pass of
    time constant ``tau``. Returns the tuning curve ``(n_angles,)``.
    """
    stim = moving_edges(
        lattice,
        angles_deg=angles_deg,
        speed=speed,
        dt=dt,
        t_pre=t_pre,
        t_stim=t_stim,
        background=0.0,
    )
    c = lattice.centre
    nb = np.flatnonzero(
        np.abs(np.hypot(lattice.x, lattice.y) - math.sqrt(3.0)) < 1e-6
    )  # the 6 neighbours
    off = (
        np.rad2deg(np.arctan2(lattice.y[nb], lattice.x[nb])) - preferred_deg + 180.0
    ) % 360.0 - 180.0
    arms = (
        nb[np.abs(off) < 1e-6]
        if np.any(np.abs(off) < 1e-6)
        else nb[np.abs(np.abs(off) - 30.0) < 1e-6]
    )
    out = torch.zeros(stim.shape[:2])
    for n in arms:
        sc, sn = stim[:, :, c], stim[:, :, n]
        lc, ln = torch.zeros_like(sc), torch.zeros_like(sn)
        lc[:, 0], ln[:, 0] = sc[:, 0], sn[:, 0]
        for t in range(1, stim.shape[1]):
            lc[:, t] = lc[:, t - 1] + dt / tau * (sc[:, t] - lc[:, t - 1])
            ln[:, t] = ln[:, t - 1] + dt / tau * (sn[:, t] - ln[:, t - 1])
        out = out + lc * sn - sc * ln
    return out.clamp(min=0).amax(1).numpy().astype(float)


class MotionDecoder(nn.Module):
    """The network plus a linear readout, shared by all columns, from the rectified voltages of
    ``readout_types`` in each column to the local flow ``(v_x, v_y)``.

    The readout sees each type's change from its settled value in units of ``gain``
    (the untrained responses are about 0.01, too small for a readout trained from zero
    to pick up in a few hundred steps otherwise)."""

    def __init__(self, net, graph, readout_types, *, gain: float = 100.0) -> None:
        super().__init__()
        self.gain = float(gain)
        self.net = net
        cols = [np.flatnonzero(graph.node_type == graph.types.index(t)) for t in readout_types]
        order = [c[np.argsort(graph.node_column[c])] for c in cols]
        self.register_buffer(
            "readout", torch.as_tensor(np.stack(order, 1), dtype=torch.long)
        )  # (C, K)
        self.linear = nn.Linear(len(readout_types), 2)

    def forward(self, stimulus: torch.Tensor, *, dt: float, v0: torch.Tensor) -> torch.Tensor:
        """Decoded flow per step and column, ``(B, T, C, 2)``."""
        v = self.net(stimulus, dt=dt, v0=v0)
        x = torch.relu(v[:, :, self.readout]) - torch.relu(v0[:, self.readout])[:, None]
        x = x * self.gain
        return self.linear(x)


def train_motion_decoder(
    model: MotionDecoder,
    lattice: HexLattice,
    *,
    n_steps: int,
    batch: int,
    n_frames: int,
    dt: float,
    lr: float,
    speed_range: tuple[float, float],
    n_settle: int,
    seed: int,
    p_edge: float = 0.5,
    progress: bool = True,
):
    """Train ``model`` (log scales, log time constants, resting potentials, readout) with Adam
    to decode the flow of moving textures and edges; MSE over the second half of each clip,
    flow in units of the largest speed. Returns the :class:`~neuroinverse.training.History`."""
    dev = model.readout.device
    vmax = float(speed_range[1])

    def loss_fn(step: int, gen: torch.Generator):
        g = torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device))
        )
        stim, flow = moving_textures(
            lattice,
            n=batch,
            n_steps=n_frames,
            dt=dt,
            speed_range=speed_range,
            generator=g,
            p_edge=p_edge,
        )
        stim, flow = stim.to(dev), flow.to(dev) / vmax
        v0 = _settle(model.net, stim, dt, n_settle)
        pred = model(stim, dt=dt, v0=v0)[:, n_frames // 2 :]
        return ((pred - flow[:, None, None, :]) ** 2).mean()

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(
        loss_fn,
        module=model,
        optimizers=opt,
        n_steps=n_steps,
        clipping=Clipping(1.0),
        seed=seed,
        progress=progress,
        desc="motion decoding",
    )
