"""S3ID's stochastic gradient step against the number of neurons p: seconds, FLOPs and peak memory.

One step = the O(p n^2) loss on ``--batch`` time points, its backward pass and an Adam update
(``neuroinverse.inference.time_step``). FLOPs are counted by ``torch.utils.flop_counter`` and
peak tensor bytes by the book's dispatch-mode tracker, both on the ``meta`` device
(``step_work``); on CUDA the allocator's peak (``torch.cuda.max_memory_allocated``) is shown
too. The log-log slopes against p are the stitching chapter's claim C5 (work slope in [0.8, 1.2]).

    python benchmarks/stitching_scaling.py [--p 1000 10000 100000] [--n 10] [--steps 20] [--device cpu]

Writes a Markdown table to stdout and to ``benchmarks/results/stitching_scaling-<device>.md``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import step_work, time_step

OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    rows = []
    for p in args.p:
        flops, peak = step_work(p, args.n, batch=args.batch)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        secs = time_step(p, args.n, batch=args.batch, steps=args.steps, device=dev)
        cuda_peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else float("nan")
        rows.append((p, secs, flops, peak, cuda_peak))
    arr = np.array([r[:4] for r in rows], dtype=float)
    lp = np.log(arr[:, 0])
    slope = {k: float(np.polyfit(lp, np.log(arr[:, i]), 1)[0]) for i, k in ((1, "time"), (2, "flops"), (3, "memory"))}
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    lines = [
        f"# S3ID stochastic step against p ({args.device}: {name}, torch {torch.__version__}, "
        f"{args.threads} threads, n = {args.n}, batch = {args.batch}, median of {args.steps} steps)",
        "",
        "| p | seconds / step | FLOPs (counted) | peak tensor MiB (counted) | CUDA peak MiB |",
        "|---|---|---|---|---|",
    ]
    for p, secs, flops, peak, cpk in rows:
        lines.append(f"| {p:,} | {secs:.4g} | {flops:.3g} | {peak / 2**20:.1f} | {cpk / 2**20:.1f} |")
    lines += [
        "",
        f"log-log slopes against p: time {slope['time']:.2f}, FLOPs {slope['flops']:.2f}, "
        f"peak memory {slope['memory']:.2f} (claim: work slopes in [0.8, 1.2]).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / f"stitching_scaling-{dev.type}.md").write_text(text)


if __name__ == "__main__":
    main()
