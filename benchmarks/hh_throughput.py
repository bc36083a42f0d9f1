"""Hodgkin-Huxley simulator throughput: simulations per second, batched (snpe-hh chapter).

Integrates the 2-parameter model (120 ms, step current, exponential Euler) for prior draws
at several batch sizes and time steps, on the CPU with 1 and 2 threads and on CUDA when present,
and writes ``benchmarks/results/hh_throughput.md``.

    .venv/bin/python benchmarks/hh_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from neuroinverse.simulators import hh_model, hh_summary, simulate_hh

OUT = Path(__file__).resolve().parent / "results" / "hh_throughput.md"


def measure(n: int, dt: float, device: str, repeats: int = 1) -> tuple[float, float]:
    """(simulations per second, seconds per call) for a batch of ``n`` traces, features included."""
    m = hh_model("2param")
    theta = m.prior.sample(n, generator=torch.Generator().manual_seed(0))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    simulate_hh(theta[:2], dt=dt, duration=30.0, device=device)  # warm-up
    best = float("inf")
    for r in range(repeats):
        sync()
        t0 = time.perf_counter()
        tr = simulate_hh(theta, dt=dt, generator=torch.Generator().manual_seed(r), device=device)
        hh_summary(tr, features="7")
        sync()
        best = min(best, time.perf_counter() - t0)
    return n / best, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller batches (a smoke test)")
    args = ap.parse_args()
    rows = []
    sizes = (100, 1000) if args.quick else (100, 1000, 5000)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for dt in (0.025, 0.01):
            for n in sizes:
                if dt == 0.01 and n > 1000 or (args.quick and dt == 0.01 and n > 100):
                    continue  # keeps the CPU run to about a minute or two
                rate, sec = measure(n, dt, "cpu")
                rows.append((f"cpu ({threads} thread{'s' if threads > 1 else ''})", dt, n, sec, rate))
                print(rows[-1])
    if torch.cuda.is_available():
        for dt in (0.025, 0.01):
            for n in (1000, 5000, 20000):
                rate, sec = measure(n, dt, "cuda", repeats=2)
                rows.append((torch.cuda.get_device_name(0), dt, n, sec, rate))
                print(rows[-1])
    lines = [
        "# Hodgkin-Huxley simulator throughput",
        "",
        "2-parameter HH model, 120 ms traces, exponential Euler, 7 summary features included; "
        f"float32. Machine: {platform.machine()}, {platform.processor() or 'cpu'}; torch {torch.__version__}.",
        "Measured on a shared machine: other jobs may have been running (see the load below).",
        "",
        "| device | dt (ms) | batch | seconds | simulations / s |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {d} | {dt} | {n} | {s:.2f} | {r:.0f} |" for d, dt, n, s, r in rows]
    try:
        load = open("/proc/loadavg").read().split()[:3]
        lines += ["", f"Load average during the run: {' '.join(load)}"]
    except OSError:
        pass
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
