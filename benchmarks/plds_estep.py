"""The PLDS Laplace E-step (block-tridiagonal Newton, batched over trials): trials per second.

Data: the Fig-2 simulation of Park, Bohner & Macke (NIPS 2015) at its size (100 trials of
200 bins, 40 neurons, 4 latents, 2 inputs) drawn by ``simulate_poisson_lds``; the E-step runs at
the true parameters from a zero start until the log joint stops improving. Three variants of
the same call:

* ``plds``: shared parameters, the inputs' prior mean, the true offsets h_r as known;
* ``nplds``: the same plus the variance term 1/2 c_i^T S_r c_i of an uncertain offset
  (``eta_offset``), as inside the N-PLDS's EM;
* ``independent``: one A, C, d per trial (leading trial axis), as in independent per-trial fits.

A second table times one EM iteration of each model of ``fit_plds`` (E-step, M-steps and,
for the N-PLDS, q(h) and the 26 x 51 hyper-parameter grid), median over iterations 2..n.

    python benchmarks/plds_estep.py [--trials 10 100] [--repeats 3] [--threads 1] [--em-iters 4]

Writes Markdown tables to stdout and to ``benchmarks/results/plds_estep.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import fit_plds, laplace_estep, prior_mean_trajectory
from neuroinverse.simulators import simulate_poisson_lds

OUT = Path(__file__).resolve().parent / "results" / "plds_estep.md"


def estep_call(d, variant: str):
    """The E-step call of one variant at the true parameters; returns a zero-argument function."""
    R, k = d.y.shape[0], d.A.shape[0]
    eye = np.eye(k)
    m = prior_mean_trajectory(d.A, d.B, d.u, np.zeros(k))
    if variant == "plds":
        return lambda: laplace_estep(d.y, d.A, eye, eye, d.C, d.d, d.h, prior_mean=m)
    if variant == "nplds":
        S = 0.01 * np.eye(k)
        off = (0.5 * np.einsum("pi,ij,pj->p", d.C, S, d.C))[None, None]
        return lambda: laplace_estep(d.y, d.A, eye, eye, d.C, d.d, d.h, prior_mean=m, eta_offset=off)
    if variant == "independent":
        A, C, dd = (np.broadcast_to(v, (R, *v.shape)).copy() for v in (d.A, d.C, d.d))
        mr = prior_mean_trajectory(A, np.broadcast_to(d.B, (R, *d.B.shape)).copy(), d.u, np.zeros(k))
        return lambda: laplace_estep(d.y, A, eye, eye, C, dd, d.h, prior_mean=mr)
    raise ValueError(f"unknown variant {variant!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=["plds", "nplds", "independent"])
    ap.add_argument("--em-iters", type=int, default=4, help="EM iterations timed per model (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head = (
        f"({platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), T = {args.T}, "
        f"p = 40, k = 4, float64"
    )
    lines = [
        f"# PLDS Laplace E-step {head}, best of {args.repeats})",
        "",
        "| variant | trials | Newton steps | seconds | trials / second |",
        "|---|---|---|---|---|",
    ]
    for variant in args.variants:
        for R in args.trials:
            d = simulate_poisson_lds(n_trials=R, T=args.T, seed=0)
            call = estep_call(d, variant)
            best, steps = np.inf, 0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                post = call()
                best, steps = min(best, time.perf_counter() - t0), post.newton_steps
            lines.append(f"| {variant} | {R} | {steps} | {best:.3f} | {R / best:.1f} |")
    if args.em_iters > 0:
        R = max(args.trials)
        d = simulate_poisson_lds(n_trials=R, T=args.T, seed=0)
        lines += [
            "",
            f"## One EM iteration of `fit_plds` {head}, {R} trials, median of iterations 2..{args.em_iters})",
            "",
            "| model | seconds per iteration |",
            "|---|---|",
        ]
        for model in ("nplds", "no-coupling", "plds", "independent"):
            fit = fit_plds(d.y, d.u, 4, model=model, n_iter=args.em_iters, progress=False)
            sec = np.median([h["seconds"] for h in fit.history[1:]] or [fit.history[0]["seconds"]])
            lines.append(f"| {model} | {sec:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
