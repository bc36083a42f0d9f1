"""Sampling an autoregressive spike posterior: the fixed-point iteration against the sequential loop.

A batch of 32 sequences of the discrete-flows chapter's test posterior (a_t = logit 0.03 plus
bumps of height 2–4, refractory kernel V_k = −2 e^{−k/3}, L = 10) is drawn by both samplers
from the same noise, which also checks that the two samples are identical. Reported: wall time
of each (median over repeats), the speed-up, and the iterations the fixed point used (its
number of parallel passes and the median and largest K* per sequence). The chapter's ci target
is a speed-up of at least 5x at T = 4,000 on two CPU cores.

    python benchmarks/discrete_flows.py [--sweep] [--device auto|cpu|cuda] [--threads 1 2]

The default run times T = 1,000 and 4,000 (a few seconds); ``--sweep`` times T = 1,000 to
16,000. CPU rows are timed with each thread count given (default one and two torch threads);
on a GPU the GPU rows are timed too. Writes a Markdown table to stdout and to
``benchmarks/results/discrete-flows-<device>.md``. The load of the machine is printed with the
table: with two threads on a busy two-core machine, each of the fixed-point iteration's
parallel tensor operations can wait for a descheduled thread, which slows it many times.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from neuroinverse.inference import example_ar_posterior, fixed_point_sample, sequential_sample
from neuroinverse.runtime import resolve_device, time_call


def measure(n_frames: int, device: torch.device, threads: int, batch: int = 32, repeats: int = 3) -> dict:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(n_frames)
    logits, kernel = example_ar_posterior(batch, n_frames, generator=g)
    noise = torch.rand(logits.shape, generator=g)
    logits, kernel, noise = logits.to(device), kernel.to(device), noise.to(device)
    fp = fixed_point_sample(logits, kernel, noise)
    if not torch.equal(fp.spikes, sequential_sample(logits, kernel, noise)):
        raise AssertionError(f"fixed point and sequential samples differ at T = {n_frames} on {device}")
    t_seq = time_call(lambda: sequential_sample(logits, kernel, noise), repeats=repeats, warmup=1)
    t_fp = time_call(lambda: fixed_point_sample(logits, kernel, noise), repeats=max(repeats, 5), warmup=1)
    return dict(
        T=n_frames,
        device=device.type,
        threads=threads,
        sequential=t_seq,
        fixed_point=t_fp,
        passes=fp.n_passes,
        median_k=int(fp.iterations.median()),
        max_k=int(fp.iterations.max()),
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts for torch")
    ap.add_argument("--sweep", action="store_true", help="time T = 1,000 to 16,000 (default: 1,000 and 4,000)")
    args = ap.parse_args(argv)
    dev = resolve_device(args.device)
    lengths = (1000, 2000, 4000, 8000, 16000) if args.sweep else (1000, 4000)
    runs = [(torch.device("cpu"), n) for n in args.threads] + ([(dev, max(args.threads))] if dev.type == "cuda" else [])
    rows = [measure(T, d, n) for d, n in runs for T in lengths]
    head = (
        f"Sampling 32 AR spike sequences, torch {torch.__version__}, {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), {platform.processor() or platform.machine()}"
        + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "")
    )
    lines = [
        head,
        "",
        "| device | threads | T | sequential (ms) | fixed point (ms) | speed-up | passes | median K* | max K* |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['device']} | {r['threads']} | {r['T']} | {r['sequential'] * 1e3:.1f} | "
            f"{r['fixed_point'] * 1e3:.2f} | {r['sequential'] / r['fixed_point']:.1f}x | "
            f"{r['passes']} | {r['median_k']} | {r['max_k']} |"
        )
    lines += ["", "Both samplers return the same sample for the same noise (checked for every row)."]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"discrete-flows-{dev.type}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
