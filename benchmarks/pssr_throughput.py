"""PSSR throughput: HR generation, acquisition, crappification and restoration.

Times, at the ``pssr`` chapter's sizes: the synthetic EM generator (images/s), the
point-scanning acquisition model (images/s), the on-the-fly torch crappifiers on a training
batch (tiles/s), one training step, and restoration of whole LR images by the ci network
(LR-grid residual U-Net) and by the paper-scale bilinear-first U-Net (HR megapixels/s).

    python benchmarks/pssr_throughput.py [--threads 2] [--repeats 5]

Runs on the CPU and, when CUDA is available, on the GPU too; writes a Markdown table to
stdout and to ``benchmarks/results/pssr_throughput.md``. The PSSR2 package (PyPI ``pssr``)
is not compared: it is not a dependency of the book.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import pssr_batch
from neuroinverse.models import LRResUNet, PSSRUNet
from neuroinverse.runtime import time_call
from neuroinverse.simulators import crappify, em_tissue, point_scan

SCAN = dict(factor=4, dwell_us=1.0, photons_per_us=80.0, blur_px=1.0, detector_sigma=0.02)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_rows(rows: list, repeats: int) -> None:
    for size in (256, 512):
        t = time_call(lambda size=size: em_tissue((size, size), seed=0), repeats=repeats, warmup=1)
        rows.append(("EM generator", f"{size}² HR", "cpu", 1 / t, "images/s"))
        img = em_tissue((size, size), seed=0).image
        t = time_call(lambda img=img: point_scan(img, **SCAN, seed=0), repeats=repeats, warmup=1)
        rows.append(("acquisition (4× LR)", f"{size}² HR", "cpu", 1 / t, "images/s"))


def torch_rows(device: torch.device, rows: list, repeats: int) -> None:
    dev = str(device)
    hr = torch.rand(16, 64, 64, device=device)
    for kind in ("em_ag", "fluo_ag_sp"):
        gen = torch.Generator(device=device).manual_seed(0)

        def crap(kind=kind, gen=gen):
            crappify(hr, kind, generator=gen)
            _sync(device)

        t = time_call(crap, repeats=repeats, warmup=1)
        rows.append((f"crappify {kind}", "16 × 64² tiles", dev, 16 / t, "tiles/s"))
    data = torch.rand(16, 256, 256, device=device)
    gen = torch.Generator(device=device).manual_seed(0)

    def batch():
        pssr_batch(data, kind="em_ag", factor=4, tile=64, batch=16, frames=1, generator=gen)
        _sync(device)

    rows.append(("training batch (crop, dihedral, crappify)", "16 × 64²", dev, 16 / time_call(batch), "tiles/s"))
    nets = [("LR-grid ResUNet (ci)", LRResUNet(1, 4, (32, 64)), 64)]
    nets.append(("bilinear-first U-Net (full)", PSSRUNet(1, 4), 64 if device.type == "cuda" else 16))
    for name, net, lr_size in nets:
        net = net.to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        x = torch.rand(4, 1, lr_size, lr_size, device=device)
        y = torch.rand(4, 1, 4 * lr_size, 4 * lr_size, device=device)

        def step(net=net, opt=opt, x=x, y=y):
            opt.zero_grad()
            torch.mean((net(x) - y) ** 2).backward()
            opt.step()
            _sync(device)

        reps = max(1, repeats // 2)
        rows.append(
            (f"training step, {name}", f"4 × {4 * lr_size}² HR", dev, 1 / time_call(step, repeats=reps), "steps/s")
        )

        @torch.no_grad()
        def infer(net=net, x=x):
            net.eval()
            net(x)
            _sync(device)

        t = time_call(infer, repeats=reps, warmup=1)
        rows.append((f"restoration, {name}", f"4 × {4 * lr_size}² HR", dev, 4 * (4 * lr_size) ** 2 / t / 1e6, "MP/s"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per row")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows: list = []
    cpu_rows(rows, args.repeats)
    torch_rows(torch.device("cpu"), rows, args.repeats)
    gpu = ""
    if torch.cuda.is_available():
        torch_rows(torch.device("cuda"), rows, args.repeats)
        gpu = f", {torch.cuda.get_device_name(0)}"
    head = (
        f"PSSR throughput (pssr chapter sizes), torch {torch.__version__}, numpy {np.__version__}, "
        f"{args.threads} CPU threads, {platform.processor() or platform.machine()}{gpu}; 1-min load average at "
        f"start {load:.1f} on {os.cpu_count()} cores (a load above the core count slows every CPU row)"
    )
    lines = [head, "", "| stage | size | device | rate | unit |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {z} | {d} | {r:.4g} | {u} |" for s, z, d, r, u in rows]
    lines += [
        "",
        "Rates are 1 / median time of repeated calls. MP/s = HR megapixels restored per second (whole images, no "
        "tiling). The paper-scale network runs at 64² HR on the CPU to keep the benchmark short. The PSSR2 package "
        "(PyPI `pssr`) is not benchmarked: it is not a dependency of the book.",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "pssr_throughput.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
