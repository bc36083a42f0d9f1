"""SMLM localisation throughput: DECODE inference and post-processing beside the classical fitter.

All methods run on the same simulated 2D frames (40 × 40 px, 100 nm pixels, 2 emitters/µm²,
the SMLM-challenge EMCCD). DECODE is timed at the chapter's ci size and at the reference size
(48 features, two down-samplings); untrained weights cost the same as trained ones. An
untrained network detects nothing, so post-processing is timed on the network's output with
the detection map replaced by ``p = 0.9`` at the pixel of every labelled emitter (a realistic
number of localisations). The classical fitter is local maxima + batched Gaussian MLE
(20 Levenberg–Marquardt iterations). On the CPU the reference-size network is timed on an
eighth of the frames. The simulator row is the on-the-fly training-data rate
(3-frame windows, 64 per call).

    python benchmarks/decode_throughput.py [--threads 2] [--frames 512]

Runs on the CPU and, when CUDA is available, on the GPU too; writes a Markdown table to
stdout and to ``benchmarks/results/decode_throughput.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from neuroinverse.inference import fit_frames, post_process, predict
from neuroinverse.models import DecodeNet, DecodeScales
from neuroinverse.runtime import time_call
from neuroinverse.simulators import SMLMSimulator


def _peaked(out: dict, labels, shape) -> dict:
    """The output with p = 0.9 at each labelled emitter's pixel and 0.001 elsewhere."""
    H, W = shape
    p = torch.full_like(out["p"], 1e-3)
    r = labels.y.round().long().clamp(0, H - 1).to(p.device)
    c = labels.x.round().long().clamp(0, W - 1).to(p.device)
    p[labels.frame.to(p.device), 0, r, c] = 0.9
    return {**out, "p": p}


def run(device: torch.device, n_frames: int, rows: list) -> None:
    sim = SMLMSimulator(
        frame_shape=(40, 40), density=2.0, flux_mean=3000.0, flux_std=800.0, flux_min=300.0, background=(20.0, 40.0)
    )
    data = sim.sample(1, n_frames, generator=torch.Generator().manual_seed(0))
    frames, labels = data.frames, data.labels
    scales = DecodeScales.from_simulator(sim)
    dev = str(device)
    # the reference-size network is slow on a CPU: time it on an eighth of the frames there
    n_ref = n_frames if device.type == "cuda" else max(n_frames // 8, 8)
    for name, kw, n in (
        ("DECODE ci size (8 feat., 1 down)", dict(features=8, depth=1, inter_features=8), n_frames),
        ("DECODE reference size (48 feat., 2 down)", dict(features=48, depth=2, inter_features=48), n_ref),
    ):
        torch.manual_seed(0)
        net = DecodeNet(scales=scales, n_frames=3, **kw).to(device).eval()
        f_dev = frames[:, :n].to(device)
        lab_n = labels.in_frames(0, n)
        t = time_call(lambda net=net, f=f_dev: predict(net, f, batch_size=128), repeats=2, warmup=1)
        out = _peaked(predict(net, f_dev, batch_size=128), lab_n, sim.frame_shape)
        n_loc = len(post_process(out, scales=scales))
        rows.append((f"{name}: inference", dev, n, t, n_loc))
        t = time_call(lambda out=out: post_process(out, scales=scales), repeats=5, warmup=1)
        rows.append((f"{name}: post-processing", dev, n, t, n_loc))
    f_dev = frames[0].to(device)
    loc = fit_frames(f_dev, psf=sim.psf, excess_noise=2.0, threshold_k=2.0)
    t = time_call(lambda: fit_frames(f_dev, psf=sim.psf, excess_noise=2.0, threshold_k=2.0), repeats=3, warmup=1)
    rows.append(("classical: detection + Gaussian MLE", dev, n_frames, t, len(loc)))
    gen = torch.Generator(device=device).manual_seed(1)
    t = time_call(lambda: sim.sample(64, 3, generator=gen, device=device), repeats=5, warmup=1)
    rows.append(("simulator: 64 windows x 3 frames (on-the-fly training data)", dev, 192, t, None))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--frames", type=int, default=512, help="frames per timed run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    run(torch.device("cpu"), args.frames, rows)
    gpu = ""
    if torch.cuda.is_available():
        run(torch.device("cuda"), args.frames, rows)
        gpu = f", {torch.cuda.get_device_name(0)}"
    head = (
        f"SMLM localisation throughput, 40 x 40 px frames at 2 emitters/µm², torch {torch.__version__}, "
        f"{args.threads} CPU threads, {platform.processor() or platform.machine()}{gpu}; "
        f"1-min load average at start {load:.1f} on {os.cpu_count()} cores (a load above the core "
        "count slows every CPU row)"
    )
    lines = [
        head,
        "",
        "| stage | device | frames | wall time (s) | frames/s | localisations/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, d, n, t, n_loc in rows:
        locs = f"{n_loc / t:.3g}" if n_loc is not None else "–"
        lines.append(f"| {name} | {d} | {n} | {t:.4g} | {n / t:.4g} | {locs} |")
    lines += [
        "",
        "Inference and post-processing are timed separately (median of repeated runs). "
        "Post-processing runs on output maps with one detection per labelled emitter "
        "(see the script's docstring).",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "decode_throughput.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
