"""Greedy weighted-DPP selection (the ``active-sem`` chapter): time per window against candidates.

Mi et al. (MICCAI 2020, arXiv:2101.02746, Sec. 2.3) sample a weighted DPP per 64x64 window;
the book approximates its mode by the greedy MAP algorithm of Chen, Zhang & Zhou (NeurIPS
2018, Alg. 1), O(N k^2) for N candidates and k chosen pixels
(:func:`neuroinverse.inference.greedy_kdpp`). The chapter takes the top N = 4k pixels of the
predicted error as candidates; this benchmark times one window for budgets k = rho * 4096 at
rho in {0.01, 0.02, 0.05, 1/16, 0.1, 0.2} (N = 4k), and at fixed k = 205 (rho = 0.05) for
N from k to 4096, on one CPU thread, with a random error map (median of 3 runs after one
warm-up). The slope of log time against log N at fixed k should be near 1, and against k at
N = 4k near 3.

    python benchmarks/active_sem_dpp.py

Writes a Markdown table to stdout and to ``benchmarks/results/active_sem_dpp.md``.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import greedy_kdpp
from neuroinverse.runtime import cpu_model, time_call

WINDOW = 64
SIGMA = 0.1


def _items(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p = rng.random(WINDOW * WINDOW)
    pool = np.argsort(-p)[:n]
    yy, xx = np.unravel_index(pool, (WINDOW, WINDOW))
    return p[pool] / p.max(), np.stack([yy + 1, xx + 1], axis=1) / WINDOW


def main() -> str:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = ["| rho | k | candidates N | time per window (ms) |", "|---|---|---|---|"]
    by_k = []
    for rho in (0.01, 0.02, 0.05, 1 / 16, 0.1, 0.2):
        k = round(rho * WINDOW * WINDOW)
        q, x = _items(min(4 * k, WINDOW * WINDOW), rng)
        t = time_call(lambda q=q, x=x, k=k: greedy_kdpp(q, x, k, sigma=SIGMA), repeats=3)
        by_k.append((k, t))
        rows.append(f"| {rho:.4f} | {k} | {q.size} | {1e3 * t:.1f} |")
    by_n = []
    k = 205
    for n in (205, 410, 820, 1640, 4096):
        q, x = _items(n, rng)
        t = time_call(lambda q=q, x=x: greedy_kdpp(q, x, k, sigma=SIGMA), repeats=3)
        by_n.append((n, t))
        rows.append(f"| 0.0500 | {k} | {n} | {1e3 * t:.1f} |")
    slope_n = np.polyfit(*np.log(np.array(by_n)).T, 1)[0]
    slope_k = np.polyfit(*np.log(np.array(by_k)).T, 1)[0]
    text = "\n".join(
        [
            "# Greedy weighted DPP: time per 64x64 window",
            "",
            f"Machine: {cpu_model()} ({platform.machine()}), one thread; median of 3 runs after one warm-up.",
            "",
            *rows,
            "",
            f"Slope of log time against log N at k = 205: {slope_n:.2f} (O(N k^2): 1). "
            f"Against log k at N = 4k: {slope_k:.2f} (3 for O(N k^2); lower while the "
            "per-step overheads dominate).",
            "",
        ]
    )
    out = Path(__file__).parent / "results" / "active_sem_dpp.md"
    out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
