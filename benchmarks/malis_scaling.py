"""Scaling of the constrained MALIS loss with crop size, against an all-pairs brute force.

Claim M2 of the mala chapter (Funke et al., TPAMI 2019, Sec. 2.2: the quasi-linear MALIS
gradient replaces the original quadratic algorithm). The chapter judges it on counted work
(``malis_work``), reported here too; besides, the median CPU time of the constrained MALIS loss
(both Kruskal passes, plus the weighted loss and its backward pass) on 3-D cubes of side
16, 24, 32, 48, 64 with random affinities U(0, 1) and Voronoi labels should grow close to
``n log n`` in the voxel count ``n`` (log-log slope ≤ 1.3). The naive brute force (one
tree-path query per voxel pair, :func:`neuroinverse.segmentation.malis.malis_counts_bruteforce`)
on cubes of side 4-8 should grow at least quadratically (slope ≥ 1.8).

    python benchmarks/malis_scaling.py [--sides 16 24 32 48 64] [--brute 4 5 6 7 8] [--repeats 5]

Writes a Markdown table to stdout and to ``benchmarks/results/malis_scaling.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from neuroinverse.labels import relabel_connected
from neuroinverse.runtime import cpu_times
from neuroinverse.segmentation import (
    malis_counts,
    malis_counts_bruteforce,
    malis_loss,
    malis_work,
    malis_work_bruteforce,
)

OUT = Path(__file__).resolve().parent / "results" / "malis_scaling.md"


def voronoi_labels(side: int, rng: np.random.Generator, *, cell: float = 8.0) -> np.ndarray:
    """Voronoi cells (mean diameter about ``cell`` voxels) with 1-voxel boundaries set to 0."""
    shape = (side,) * 3
    n = max(2, int(side**3 / cell**3))
    seeds = np.zeros(shape, dtype=np.int64)
    seeds[tuple(rng.integers(0, side, size=(3, n)))] = np.arange(1, n + 1)
    _, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    cells = seeds[tuple(idx)]
    boundary = np.zeros(shape, dtype=bool)
    for ax in range(3):
        d = np.diff(cells, axis=ax) != 0
        sl = [slice(None)] * 3
        sl[ax] = slice(1, None)
        boundary[tuple(sl)] |= d
    return relabel_connected(np.where(boundary, 0, cells))


def slope(n: list[int], t: list[float]) -> float:
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", type=int, nargs="+", default=[16, 24, 32, 48, 64])
    ap.add_argument("--brute", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)

    # compile (numba, cache=True) outside the timings
    lab = voronoi_labels(8, rng)
    malis_loss(torch.rand(3, 8, 8, 8, dtype=torch.float64), lab, constrained=True)
    malis_counts(rng.random((3, 8, 8, 8)), lab)

    fast_cases = []
    for side in args.sides:
        lab = voronoi_labels(side, rng)
        aff = torch.rand((3, side, side, side), dtype=torch.float64, generator=torch.Generator().manual_seed(side))
        fast_cases.append((side, aff.requires_grad_(True), lab))

    def loss_step(aff, lab):
        malis_loss(aff, lab, constrained=True).backward()

    t_counts = cpu_times(
        [lambda a=a, lab=lab: malis_counts(a.detach().numpy(), lab, constrained=True) for _, a, lab in fast_cases],
        repeats=args.repeats,
    )
    t_loss = cpu_times([lambda a=a, lab=lab: loss_step(a, lab) for _, a, lab in fast_cases], repeats=args.repeats)
    w_counts = [malis_work(a.detach().numpy(), lab, constrained=True)["total"] for _, a, lab in fast_cases]
    n_fast = [side**3 for side, _, _ in fast_cases]
    rows = [
        f"| constrained MALIS | {side}³ | {side**3} | {int(lab.max())} | {w} | {tc:.4f} | {tl:.4f} |"
        for (side, _, lab), w, tc, tl in zip(fast_cases, w_counts, t_counts, t_loss, strict=True)
    ]
    brute_cases = [
        (side, rng.random((3, side, side, side)), voronoi_labels(side, rng, cell=3.0)) for side in args.brute
    ]
    t_brute = cpu_times(
        [lambda a=a, lab=lab: malis_counts_bruteforce(a, lab) for _, a, lab in brute_cases], repeats=args.repeats
    )
    w_brute = [malis_work_bruteforce(a, lab)["total"] for _, a, lab in brute_cases]
    n_brute = [side**3 for side, _, _ in brute_cases]
    rows += [
        f"| brute force (all pairs) | {side}³ | {side**3} | {int(lab.max())} | {w} | {tb:.4f} | – |"
        for (side, _, lab), w, tb in zip(brute_cases, w_brute, t_brute, strict=True)
    ]
    s_counts, s_loss, s_brute = slope(n_fast, t_counts), slope(n_fast, t_loss), slope(n_brute, t_brute)
    sw_counts, sw_brute = slope(n_fast, w_counts), slope(n_brute, w_brute)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    text = "\n".join(
        [
            "# Constrained MALIS: work and time against crop size",
            "",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
            f"{load:.1f} at the end, torch threads 1, numba (serial). CPU seconds per call: median over "
            f"{args.repeats} interleaved rounds of ~50 ms blocks (`neuroinverse.runtime.cpu_times`). "
            "Random affinities U(0,1), Voronoi labels (relabelled connected pieces).",
            "",
            "| method | crop | voxels n | objects | work (operations) | counts (s) | loss + backward (s) |",
            "|---|---|---|---|---:|---:|---:|",
            *rows,
            "",
            f"Log-log slope of the counted work (edges visited + union-find steps; pairs + tree steps "
            f"for the brute force) against n: constrained {sw_counts:.3f} (Funke et al. 2019 M2: ≤ 1.3), "
            f"brute force {sw_brute:.3f} (≥ 1.8). These are what the mala chapter judges.",
            "",
            f"Log-log slope of CPU time against n (shown, not judged): constrained counts {s_counts:.2f}, "
            f"loss + backward {s_loss:.2f}; brute force {s_brute:.2f}.",
            "",
        ]
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
