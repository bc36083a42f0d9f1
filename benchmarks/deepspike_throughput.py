"""Spike-inference throughput: DeepSpike's forward pass beside OASIS and the Gibbs sampler.

All three run on the same simulated M1 traces. DeepSpike uses a network with the ci-profile
architecture (untrained weights cost the same as trained ones). Throughput is traces per
second and frames per second; the Gibbs sampler runs 20 sweeps (the chapter's ci setting).

    python benchmarks/deepspike_throughput.py [--device auto|cpu|cuda] [--frames 6000]

Writes a Markdown table to stdout and to ``benchmarks/results/deepspike-throughput-<device>.md``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from neuroinverse.inference import gibbs_spikes, oasis_deconvolve
from neuroinverse.models import FactorisedSpikeCNN
from neuroinverse.runtime import resolve_device, time_call
from neuroinverse.simulators import simulate_linear


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=6000, help="frames per trace")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    T = args.frames
    data = simulate_linear(256, T, generator=torch.Generator().manual_seed(0))
    net = FactorisedSpikeCNN((16, 16, 16), (31, 21, 11), 11).to(dev).eval()
    ref = FactorisedSpikeCNN().to(dev).eval()  # the reference architecture (full profile)
    rows = []
    for n in (1, 16, 256):
        f = data.fluorescence[:n]
        t = time_call(lambda f=f: net.spike_probability(f), repeats=5, warmup=2)
        rows.append(("DeepSpike CNN (ci size)", str(dev), n, t))
        t = time_call(lambda f=f: ref.spike_probability(f), repeats=5, warmup=2)
        rows.append(("DeepSpike CNN (reference size)", str(dev), n, t))
    for n in (1, 16):
        t = time_call(lambda n=n: oasis_deconvolve(data.fluorescence[:n]), repeats=3, warmup=1)
        rows.append(("OASIS (g estimated)", "cpu", n, t))
    par = {k: data.params[k][:2].numpy() for k in ("gamma", "alpha", "beta", "sigma")}
    gf = data.fluorescence[:2, :2000]
    t = time_call(lambda: gibbs_spikes(gf, **par, n_sweeps=20), repeats=1, warmup=0)
    rows.append(("Gibbs MCMC, 20 sweeps (2000 frames/trace)", "cpu", 2, t * T / 2000))

    head = (
        f"Spike-inference throughput, {T} frames per trace, torch {torch.__version__}, "
        f"{args.threads} CPU threads, {platform.processor() or platform.machine()}"
        + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "")
    )
    lines = [
        head,
        "",
        "| method | device | traces | wall time (s) | traces/s | frames/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, d, n, t in rows:
        lines.append(f"| {name} | {d} | {n} | {t:.4g} | {n / t:.4g} | {n * T / t:.3g} |")
    lines.append("")
    lines.append("Gibbs time is measured on 2000 frames per trace and scaled linearly to the trace length.")
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"deepspike-throughput-{dev.type}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
