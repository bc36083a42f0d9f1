"""Compile the fly optic-lobe type-level connectome into a sparse neuron graph on a hex lattice.

The type-level connectome (Lappalainen et al., Nature 2024, Methods "Connectome"; the
FIB-25/FIB-19 JSON) lists for each ordered pair of cell types a sign and, per column offset
``(du, dv)``, the mean number of synapses. Compiling at extent R places one neuron of each
type per column (types with a stride ``(su, sv)`` only where ``u % su == 0`` and
``v % sv == 0``) and, for every offset, connects the source neuron at ``(u, v)`` to the
target neuron at ``(u + du, v + dv)`` when it exists. Gaps inside the convex hull of a
filter with three or more offsets are filled with ``n_syn_fill`` synapses.

The spatial controls of the chapter act on the type-level spec before compiling:
:func:`collapse_filters` (all offsets of chosen targets moved to ``(0, 0)``),
:func:`rotate_filters` (each filter rotated by a random multiple of 60 degrees) and
:func:`randomise_filters` (random signs and random offsets of the same number).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath
from scipy.spatial import ConvexHull, QhullError

from .._checks import check_positive, check_positive_int
from .hexlattice import hex_columns, rotate_axial

__all__ = [
    "T4_SUBCIRCUIT",
    "T4_TYPES",
    "NeuronGraph",
    "load_connectome",
    "fill_hull",
    "compile_connectome",
    "collapse_filters",
    "rotate_filters",
    "randomise_filters",
    "filter_of",
]

#: The 21 cell types of the ON-motion (T4) subcircuit.
T4_SUBCIRCUIT = (
    "R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5",
    "C3", "CT1(M10)", "Mi1", "Tm3", "Mi4", "Mi9", "T4a", "T4b", "T4c", "T4d",
)  # fmt: skip
T4_TYPES = ("T4a", "T4b", "T4c", "T4d")


def load_connectome(path: str | Path) -> dict:
    """Read and check the type-level connectome JSON (keys ``nodes``, ``edges``,
    ``input_units``)."""
    spec = json.loads(Path(path).read_text())
    for key in ("nodes", "edges", "input_units", "output_units"):
        if key not in spec:
            raise ValueError(f"connectome JSON lacks the key {key!r}")
    return spec


def fill_hull(offsets: list, n_syn_fill: float) -> list:
    """Offsets plus ``[[du, dv], n_syn_fill]`` at every lattice point strictly inside or on the
    convex hull of the reported offsets that is not reported (only for ≥ 3 offsets)."""
    if n_syn_fill <= 0 or len(offsets) < 3:
        return list(offsets)
    pts = np.array([o[0] for o in offsets], dtype=float)
    known = {tuple(map(int, p)) for p in pts}
    try:  # joggled hull ("QJ"), as in the reference compiler, so boundary points count the same
        hull = ConvexHull((1 + 1e-6) * pts, qhull_options="QJ")
    except QhullError:
        return list(offsets)
    lo, hi = pts.min(0).astype(int), pts.max(0).astype(int)
    gu, gv = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    grid = np.stack([gu.ravel(), gv.ravel()], 1)
    inside = MplPath(pts[hull.vertices]).contains_points(grid)
    extra = [
        [[int(a), int(b)], n_syn_fill] for a, b in grid[inside] if (int(a), int(b)) not in known
    ]
    return list(offsets) + extra


@dataclass(frozen=True)
class NeuronGraph:
    """A compiled neuron graph.

    Attributes:
        extent: hex radius R of the lattice.
        types: cell-type names, in the JSON's order.
        node_type, node_u, node_v: per neuron, shape ``(N,)``.
        node_column: index of the neuron's column in :func:`hex_columns` order, ``(N,)``.
        pairs: ``(src type, tgt type)`` index per type-pair edge, shape ``(P, 2)``.
        edge_src, edge_tgt, edge_pair: per synapse-edge, shape ``(E,)``.
        edge_sign: ±1 per edge; edge_nsyn: mean synapse count per edge.
        input_types: indices of the photoreceptor types that receive the stimulus.
    """

    extent: int
    types: tuple[str, ...]
    node_type: np.ndarray
    node_u: np.ndarray
    node_v: np.ndarray
    node_column: np.ndarray
    pairs: np.ndarray
    edge_src: np.ndarray
    edge_tgt: np.ndarray
    edge_pair: np.ndarray
    edge_sign: np.ndarray
    edge_nsyn: np.ndarray
    input_types: tuple[int, ...]

    @property
    def n_neurons(self) -> int:
        return int(self.node_type.size)

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.size)

    def neuron(self, cell_type: str, u: int = 0, v: int = 0) -> int:
        """Index of the neuron of ``cell_type`` at column ``(u, v)``."""
        if cell_type not in self.types:
            raise ValueError(f"unknown cell type {cell_type!r}")
        t = self.types.index(cell_type)
        hit = np.flatnonzero((self.node_type == t) & (self.node_u == u) & (self.node_v == v))
        if hit.size == 0:
            raise ValueError(f"no {cell_type} neuron at ({u}, {v})")
        return int(hit[0])


def _check_types(spec: dict, cell_types) -> list[str]:
    names = [n["name"] for n in spec["nodes"]]
    if cell_types is None:
        return names
    unknown = [t for t in cell_types if t not in names]
    if unknown:
        raise ValueError(f"unknown cell type(s) {unknown}; the connectome has {names}")
    keep = set(cell_types)
    return [n for n in names if n in keep]


def compile_connectome(
    spec: dict, *, extent: int, cell_types=None, n_syn_fill: float = 1.0
) -> NeuronGraph:
    """Compile the type-level ``spec`` into a neuron graph at hex radius ``extent`` (≥ 1).

    Args:
        spec: the connectome (see :func:`load_connectome`).
        extent: hex radius R; R = 15 gives the 721 columns of the paper.
        cell_types: the types to keep (default all); edges between kept types are kept.
        n_syn_fill: synapses assumed at hull gaps (0 disables filling).
    """
    extent = check_positive_int(extent, "extent", minimum=1)
    check_positive(n_syn_fill, "n_syn_fill", allow_zero=True)
    types = _check_types(spec, cell_types)
    tindex = {t: i for i, t in enumerate(types)}
    cu, cv = hex_columns(extent)
    size = 2 * extent + 1
    col_lut = np.full((size, size), -1, dtype=np.int64)
    col_lut[cu + extent, cv + extent] = np.arange(cu.size)
    node_type, node_u, node_v, luts = [], [], [], {}
    n = 0
    for node in spec["nodes"]:
        name = node["name"]
        if name not in tindex:
            continue
        kind, args = node["pattern"]
        if kind != "stride":
            raise ValueError(f"unsupported node pattern {kind!r} for {name}")
        su, sv = args
        keep = (cu % su == 0) & (cv % sv == 0)
        u, v = cu[keep], cv[keep]
        lut = np.full((size, size), -1, dtype=np.int64)
        lut[u + extent, v + extent] = n + np.arange(u.size)
        luts[name] = (u, v, lut)
        node_type.append(np.full(u.size, tindex[name]))
        node_u.append(u)
        node_v.append(v)
        n += u.size
    node_u_all, node_v_all = np.concatenate(node_u), np.concatenate(node_v)
    src, tgt, pair_id, sign, nsyn, pairs = [], [], [], [], [], []
    for e in spec["edges"]:
        if e["src"] not in tindex or e["tar"] not in tindex:
            continue
        p = len(pairs)
        pairs.append((tindex[e["src"]], tindex[e["tar"]]))
        su_, sv_, slut = luts[e["src"]]
        s_idx = slut[su_ + extent, sv_ + extent]
        tlut = luts[e["tar"]][2]
        for (du, dv), ns in fill_hull(e["offsets"], n_syn_fill):
            tu, tv = su_ + du, sv_ + dv
            ok = (np.abs(tu) <= extent) & (np.abs(tv) <= extent)
            t_idx = np.full(su_.size, -1)
            t_idx[ok] = tlut[tu[ok] + extent, tv[ok] + extent]
            hit = t_idx >= 0
            src.append(s_idx[hit])
            tgt.append(t_idx[hit])
            k = int(hit.sum())
            pair_id.append(np.full(k, p))
            sign.append(np.full(k, float(e["alpha"])))
            nsyn.append(np.full(k, float(ns)))
    cat = (
        (lambda xs, dt: np.concatenate(xs).astype(dt)) if src else (lambda xs, dt: np.zeros(0, dt))
    )
    inputs = tuple(tindex[t] for t in spec["input_units"] if t in tindex)
    return NeuronGraph(
        extent=extent,
        types=tuple(types),
        node_type=np.concatenate(node_type),
        node_u=node_u_all,
        node_v=node_v_all,
        node_column=col_lut[node_u_all + extent, node_v_all + extent],
        pairs=np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
        edge_src=cat(src, np.int64),
        edge_tgt=cat(tgt, np.int64),
        edge_pair=cat(pair_id, np.int64),
        edge_sign=cat(sign, np.float32),
        edge_nsyn=cat(nsyn, np.float32),
        input_types=inputs,
    )


def filter_of(spec: dict, source: str, target: str) -> list:
    """The reported offsets ``[[du, dv], n_syn]`` from ``source`` into ``target`` (empty if
    none)."""
    for e in spec["edges"]:
        if e["src"] == source and e["tar"] == target:
            return e["offsets"]
    return []


def _edges_into(spec: dict, targets) -> list[dict]:
    targets = set(targets)
    return [e for e in spec["edges"] if e["tar"] in targets]


def collapse_filters(spec: dict, targets=T4_TYPES) -> dict:
    """Copy of ``spec`` with every filter into ``targets`` moved to offset ``(0, 0)`` (counts
    summed)."""
    out = copy.deepcopy(spec)
    for e in _edges_into(out, targets):
        e["offsets"] = [[[0, 0], float(sum(ns for _, ns in e["offsets"]))]]
    return out


def rotate_filters(spec: dict, rng: np.random.Generator, targets=T4_TYPES) -> dict:
    """Copy of ``spec`` with each filter into ``targets`` rotated by 60, 120, ..., 300 degrees
    (random)."""
    out = copy.deepcopy(spec)
    for e in _edges_into(out, targets):
        k = int(rng.integers(1, 6))
        du, dv = rotate_axial([o[0][0] for o in e["offsets"]], [o[0][1] for o in e["offsets"]], k)
        e["offsets"] = [
            [[int(a), int(b)], o[1]] for a, b, o in zip(du, dv, e["offsets"], strict=True)
        ]
    return out


def randomise_filters(spec: dict, rng: np.random.Generator, radius: int = 2) -> dict:
    """Copy of ``spec`` with random signs and, per filter, the same number of offsets (and the
    same synapse counts) placed at random distinct offsets within hex radius ``radius``."""
    out = copy.deepcopy(spec)
    du, dv = hex_columns(radius)
    for e in out["edges"]:
        k = min(len(e["offsets"]), du.size)
        pick = rng.choice(du.size, size=k, replace=False)
        counts = [o[1] for o in e["offsets"]][:k]
        e["offsets"] = [[[int(du[i]), int(dv[i])], c] for i, c in zip(pick, counts, strict=True)]
        e["alpha"] = int(rng.choice([-1, 1]))
    return out
