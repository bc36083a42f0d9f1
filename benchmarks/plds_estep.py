"""The PLDS Laplace E-step (block-tridiagonal Newton, batched over trials): trials per second.

Data: the Fig-2 simulation of Park, Bohner & Macke (NIPS 2015) at its size (100 trials of
200 bins, 40 neurons, 4 latents) drawn by ``simulate_poisson_lds``; the E-step runs at the
true parameters from a zero start until the log joint stops improving.

    python benchmarks/plds_estep.py [--trials 100] [--repeats 3] [--threads 1]

Writes a Markdown table to stdout and to ``benchmarks/results/plds_estep.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import laplace_estep
from neuroinverse.simulators import simulate_poisson_lds

OUT = Path(__file__).resolve().parent / "results" / "plds_estep.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        f"# PLDS Laplace E-step ({platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
        f"T = {args.T}, p = 40, k = 4, float64, best of {args.repeats})",
        "",
        "| trials | Newton steps | seconds | trials / second |",
        "|---|---|---|---|",
    ]
    for R in args.trials:
        d = simulate_poisson_lds(n_trials=R, T=args.T, seed=0)
        k = d.A.shape[0]
        best, steps = np.inf, 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            post = laplace_estep(d.y, d.A, (1 - 0.81) * np.eye(k), np.eye(k), d.C, d.d, d.h)
            best, steps = min(best, time.perf_counter() - t0), post.newton_steps
        lines.append(f"| {R} | {steps} | {best:.3f} | {R / best:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
