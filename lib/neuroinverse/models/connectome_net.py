"""Connectome-constrained network of passive point neurons with graded rectified synapses.

The dynamics of Lappalainen et al. (Nature 2024, Methods "Neuron model", eq. 1-3):

    tau_t(i) dV_i/dt = -V_i + V_rest,t(i) + sum_j w_ij ReLU(V_j) + e_i(t),
    w_ij = sign_tt' * n_syn_ij * s_tt',

with one time constant and one resting potential per cell type t, and one non-negative
scale s per ordered type pair (the connectome fixes the signs, the synapse counts and who
connects to whom). The stimulus e_i enters the photoreceptors only. Integration is explicit
Euler; messages are gathered along the edge list and summed with ``index_add`` (sparse
message passing, the same code on CPU and CUDA).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._checks import check_positive

__all__ = ["ConnectomeNetwork"]


def _t(x, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


class ConnectomeNetwork(nn.Module):
    """Leaky, rectified-synapse network on a compiled neuron graph.

    Args:
        graph: a compiled graph with ``node_type``, ``node_column``, ``pairs``, ``edge_src``,
            ``edge_tgt``, ``edge_pair``, ``edge_sign``, ``edge_nsyn``, ``input_types`` and
            ``types`` (see ``neuroinverse.simulators.compile_connectome``).
        tau: initial time constant (s), one number or a ``{type: tau}`` dict with a default
            under ``"*"``.
        v_rest_mean / v_rest_std: initial resting potentials, drawn per type.
        scale: initial synapse scale per type pair (> 0).
        tau_min: floor of the time constants (s), initial and trained; the Euler step may not
            exceed it.
        generator: draws the resting potentials.

    Trained parameters: ``log_scale`` (P,), ``log_tau`` (n_types,), ``v_rest`` (n_types,).
    """

    def __init__(
        self,
        graph,
        *,
        tau: float | dict = 0.05,
        v_rest_mean: float = 0.5,
        v_rest_std: float = 0.05,
        scale: float = 0.01,
        tau_min: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_positive(scale, "scale")
        types = list(graph.types)
        self.types = tuple(types)
        n_types = len(types)
        if isinstance(tau, dict):
            default = tau.get("*", 0.05)
            taus = [float(tau.get(t, default)) for t in types]
        else:
            taus = [float(tau)] * n_types
        self.tau_min = check_positive(tau_min, "tau_min")
        for v in taus:
            if not (check_positive(v, "tau") >= tau_min):
                raise ValueError(f"initial tau {v} s is below tau_min = {tau_min} s")
        self.register_buffer("node_type", _t(graph.node_type, torch.long))
        self.register_buffer("edge_src", _t(graph.edge_src, torch.long))
        self.register_buffer("edge_tgt", _t(graph.edge_tgt, torch.long))
        self.register_buffer("edge_pair", _t(graph.edge_pair, torch.long))
        self.register_buffer(
            "edge_count", _t(graph.edge_sign, torch.float32) * _t(graph.edge_nsyn, torch.float32)
        )
        is_input = np.isin(graph.node_type, list(graph.input_types))
        self.register_buffer("input_nodes", _t(np.flatnonzero(is_input), torch.long))
        self.register_buffer("input_columns", _t(graph.node_column[is_input], torch.long))
        self.n_neurons = int(len(graph.node_type))
        self.n_columns = 3 * graph.extent * (graph.extent + 1) + 1
        self.log_scale = nn.Parameter(torch.full((len(graph.pairs),), math.log(scale)))
        self.log_tau = nn.Parameter(torch.log(torch.tensor(taus)))
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.v_rest = nn.Parameter(v_rest_mean + v_rest_std * torch.randn(n_types, generator=g))

    def weights(self) -> torch.Tensor:
        """Signed weight per edge, ``(E,)``."""
        return self.edge_count * torch.exp(self.log_scale)[self.edge_pair]

    def time_constants(self) -> torch.Tensor:
        """Per-type time constants (s), clamped at ``tau_min`` from below (Euler stays stable)."""
        return torch.clamp(torch.exp(self.log_tau), min=self.tau_min)

    def forward(
        self, stimulus: torch.Tensor, *, dt: float, v0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Integrate the network.

        Args:
            stimulus: intensities per column, ``(B, T, n_columns)``.
            dt: Euler step (s); must not exceed ``tau_min``, the smallest time constant allowed.
            v0: initial voltages ``(B, N)``; default the resting potentials.

        Returns:
            Voltages ``(B, T, N)`` after each step.
        """
        check_positive(dt, "dt")
        if stimulus.dim() != 3 or stimulus.shape[-1] != self.n_columns:
            raise ValueError(
                f"stimulus must have shape (B, T, {self.n_columns}); got {tuple(stimulus.shape)}"
            )
        if dt > self.tau_min * (1 + 1e-9):
            raise ValueError(
                f"dt = {dt} s is larger than the smallest time constant tau_min = {self.tau_min} s"
            )
        b, n_steps, _ = stimulus.shape
        w = self.weights()
        rest = self.v_rest[self.node_type]
        k = dt / self.time_constants()[self.node_type]
        v = rest.expand(b, -1).clone() if v0 is None else v0
        drive = stimulus[:, :, self.input_columns]  # (B, T, n_inputs)
        out = []
        for t in range(n_steps):
            msg = torch.relu(v)[:, self.edge_src] * w
            syn = torch.zeros_like(v).index_add(1, self.edge_tgt, msg)
            ext = torch.zeros_like(v).index_copy(1, self.input_nodes, drive[:, t])
            v = v + k * (rest + syn + ext - v)
            out.append(v)
        return torch.stack(out, 1)
