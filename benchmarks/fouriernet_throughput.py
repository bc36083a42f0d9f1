"""Snapshot-microscopy throughput: PSF stacks, image formation and decoder training steps.

Times, at the ``fouriernet`` chapter's ci and full sizes: the PSF stack of a phase mask
(forward, and forward + backward as in a joint mask/decoder step), the forward image
formation of a batch of volumes (``rfft2`` convolution of every plane with its PSF, summed),
and one training step (forward, loss, backward, Adam) of the FourierNet and of the U-Net of
the same parameter count, with the mask frozen. The FFT work of the PSF stack (D complex
FFTs of M × M) is compared with a bare ``torch.fft.fft2`` of the same tensor, and both are
converted to GFLOP/s with the usual 5 n log2 n count, so that the table says how close the
simulator's FFT work runs to this machine's FFT throughput.

    python benchmarks/fouriernet_throughput.py [--threads 2]

Runs on the CPU and, when CUDA is available, on the GPU too; writes a Markdown table to
stdout and to ``benchmarks/results/fouriernet_throughput.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import SnapshotTraining, snapshot_loss
from neuroinverse.models import FourierNet, UNet
from neuroinverse.runtime import time_call
from neuroinverse.simulators import PupilMicroscope, image_volume, ramps_mask, sparse_volumes

SIZES = {  # the chapter's two profiles
    "ci": dict(n=128, pad=64, s=4, d=8, z=20.0, shift=10.4, features=16, kernel=(3, 3, 3), base=6, depth=3, batch=4),
    "full": dict(
        n=256, pad=128, s=2, d=32, z=40.0, shift=20.8, features=64, kernel=(3, 5, 5), base=24, depth=4, batch=8
    ),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(device: torch.device, rows: list, repeats: int) -> None:
    for prof, c in SIZES.items():
        _profile(prof, c, device, rows, repeats)


def _profile(prof: str, c: dict, device: torch.device, rows: list, repeats: int) -> None:
    dev = str(device)
    scope = PupilMicroscope(
        c["n"], c["pad"], 0.325, 0.532, 0.8, 1.33, tuple(np.linspace(-c["z"], c["z"], c["d"])), c["s"]
    )
    H = scope.camera_pixels
    mask = ramps_mask(scope, c["shift"]).to(device)

    def psf_fwd():
        scope.psf_stack(mask)
        _sync(device)

    def psf_bwd():
        m = mask.clone().requires_grad_(True)
        scope.psf_stack(m).sum().backward()
        _sync(device)

    u = torch.polar(torch.ones(c["d"], scope.grid, scope.grid, device=device), mask.expand(c["d"], -1, -1))

    def bare_fft():
        torch.fft.fft2(u)
        _sync(device)

    flops = c["d"] * 5 * scope.grid**2 * math.log2(scope.grid**2)
    t_fft = time_call(bare_fft, repeats=repeats, warmup=1)
    t_psf = time_call(psf_fwd, repeats=repeats, warmup=1)
    rows.append((prof, f"bare fft2 of {c['d']} x {scope.grid}²", dev, t_fft, f"{flops / t_fft / 1e9:.3g}"))
    rows.append((prof, f"PSF stack, {c['d']} planes (forward)", dev, t_psf, f"{flops / t_psf / 1e9:.3g}"))
    rows.append(
        (
            prof,
            "PSF stack, forward + backward (joint step)",
            dev,
            time_call(psf_bwd, repeats=repeats, warmup=1),
            "–",
        )
    )
    psf = scope.psf_stack(mask)
    vol = sparse_volumes(c["batch"], (c["d"], H, H), generator=torch.Generator().manual_seed(0)).to(device)

    def form():
        image_volume(vol, psf)
        _sync(device)

    rows.append((prof, f"image formation, batch {c['batch']}", dev, time_call(form, repeats=repeats, warmup=1), "–"))
    settings = SnapshotTraining(steps=1, batch=c["batch"])
    for name, net in (
        ("FourierNet", FourierNet((H, H), c["d"], features=c["features"], kernel=c["kernel"])),
        ("U-Net", UNet(1, c["d"], dims=2, base_channels=c["base"], depth=c["depth"])),
    ):
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
        x = image_volume(vol, psf)[:, None] / 100

        def step(net=net, opt=opt, x=x, vol=vol):
            opt.zero_grad()
            snapshot_loss(net(x), vol).backward()
            opt.step()
            _sync(device)

        n_par = sum(p.numel() for p in net.parameters())
        t = time_call(step, repeats=max(1, repeats // 2), warmup=1)
        rows.append((prof, f"training step, {name} ({n_par} parameters)", dev, t, "–"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per row")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows: list = []
    run(torch.device("cpu"), rows, args.repeats)
    gpu = ""
    if torch.cuda.is_available():
        run(torch.device("cuda"), rows, args.repeats)
        gpu = f", {torch.cuda.get_device_name(0)}"
    head = (
        f"Snapshot-microscopy throughput (fouriernet chapter sizes), torch {torch.__version__}, {args.threads} CPU "
        f"threads, {platform.processor() or platform.machine()}{gpu}; 1-min load average at start {load:.1f} on "
        f"{os.cpu_count()} cores (a load above the core count slows every CPU row)"
    )
    lines = [head, "", "| profile | stage | device | ms per call | FFT GFLOP/s |", "|---|---|---|---|---|"]
    lines += [f"| {p} | {name} | {d} | {1000 * t:.4g} | {g} |" for p, name, d, t, g in rows]
    lines += [
        "",
        "ci: 128² field on a 192² FFT grid, camera 32², 8 planes; full: 256² field on a 384² grid, camera 128², "
        "32 planes. GFLOP/s counts 5 n log2 n per complex FFT of n points; the PSF row divides the same count by "
        "the whole PSF computation (pupil, defocus, FFT, crop, taper, pooling), so the ratio of the two rows is "
        "the share of the machine's FFT throughput the simulator reaches. Median of repeated calls.",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "fouriernet_throughput.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
