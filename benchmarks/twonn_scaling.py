"""TwoNN from 10^3 to 10^5 points against scikit-dimension, and RSA / SVCCA at the chapters' sizes.

The intrinsic-dimension chapter (Ansuini et al., NeurIPS 2019) estimates the TwoNN dimension
of every layer of a network on 1400 points; the paper's ImageNet layers have about 2000.
This script times the book's :func:`neuroinverse.representations.two_nn` (exact
nearest-neighbour distances in blocks of at most 128 MB) and measures its peak memory
(``tracemalloc``: NumPy's allocations) on a 10-dimensional Gaussian placed in ``R^64`` (the
width of the digit images), for N from 10^3 up to 10^5 points, beside scikit-dimension's
``skdim.id.TwoNN`` (version 0.5.0, an independent implementation; not a dependency of the
book, install it with ``pip install scikit-dimension``) on the same points: time, memory,
both estimates and their difference (claim C0c of the chapter: they agree to 1e-6 when there
are no ties). Then the RSA and SVCCA steps of the dnn-neuro-review chapter at its sizes.

    python benchmarks/twonn_scaling.py [--sizes 1000 3000 10000] [--repeats 3] [--skdim-max 30000] [--threads 1]

The default sizes keep the run to about a minute on two cores; ``--sizes 1000 10000 100000``
reaches the issue's 10^5 (scikit-dimension sorts every row of the distance matrix, so it is
skipped above ``--skdim-max`` points). Writes a Markdown table to stdout and to
``benchmarks/results/twonn_scaling.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from neuroinverse.representations import (
    compare_rdms,
    gaussian_subspace,
    linear_cka,
    noise_ceiling,
    rdm,
    rsa_permutation_null,
    svcca,
    two_nn,
)

OUT = Path(__file__).resolve().parent / "results" / "twonn_scaling.md"


def measure(fn, repeats: int) -> tuple[object, float, float]:
    """``fn()``'s result, its median wall time (s) over ``repeats`` and its peak traced memory (MB)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, float(np.median(times)), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skdim-max", type=int, default=30000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (both libraries alike)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    try:
        import skdim
    except ImportError:
        skdim = None

    lines = [
        f"# TwoNN scaling, RSA and SVCCA ({platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s), "
        f"scikit-dimension {'0.5.0' if skdim else 'not installed'})",
        "",
        "10-dimensional Gaussian in R^64, discard fraction 0.1; median of "
        f"{args.repeats} runs; peak memory traced by tracemalloc (NumPy allocations).",
        "",
        "| N | ours (s) | ours peak (MB) | skdim (s) | skdim peak (MB) | ID ours | ID skdim | abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        x = gaussian_subspace(n, 10, 64, seed=n)
        res, t, mem = measure(lambda x=x: two_nn(x).dimension, args.repeats)
        if skdim is not None and n <= args.skdim_max:
            ref, t_ref, mem_ref = measure(lambda x=x: skdim.id.TwoNN().fit(x).dimension_, args.repeats)
            cells = [f"{t_ref:.3f}", f"{mem_ref:.0f}", f"{ref:.4f}", f"{abs(res - ref):.1e}"]
        else:
            cells = ["–", "–", "–", "–"]
        lines.append(f"| {n} | {t:.3f} | {mem:.0f} | {cells[0]} | {cells[1]} | {res:.4f} | {cells[2]} | {cells[3]} |")
        print(lines[-1], flush=True)

    g = np.random.default_rng(0)
    drive = g.standard_normal((1797, 128))
    trials = g.poisson(1.2, size=(10, 200, 100)).astype(float)
    pop, layer = trials.mean(0), drive[:200]
    a, b = rdm(pop), rdm(layer)
    steps = {
        "RDM, 200 stimuli × 100 neurons": lambda: rdm(pop),
        "RSA (Spearman of two 200 × 200 RDMs)": lambda: compare_rdms(a, b),
        "noise ceiling, 10 trials, 10 splits": lambda: noise_ceiling(trials),
        "permutation null, 1000 permutations": lambda: rsa_permutation_null(a, b, n_permutations=1000),
        "SVCCA, fit 1000 / test 397 stimuli, 100 × 128 units": lambda: svcca(
            drive[:1000, :100], drive[:1000], drive[1400:, :100], drive[1400:]
        ),
        "linear CKA, 1797 stimuli, 128 × 128 units": lambda: linear_cka(drive, drive @ g.standard_normal((128, 128))),
    }
    lines += ["", "| step (dnn-neuro-review sizes) | time (s) | peak (MB) |", "|---|---|---|"]
    for name, fn in steps.items():
        _, t, mem = measure(fn, args.repeats)
        lines.append(f"| {name} | {t:.4f} | {mem:.1f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
