"""MALA pipeline throughput: seconds per megavoxel for prediction + fragments + agglomeration.

Funke et al. (TPAMI 2019, arXiv:1709.02974) report 2.6 s per megavoxel for their whole
pipeline (GPU prediction, parallel watershed and agglomeration on a cluster). This script
times the book's pipeline on one simulated volume of about 1 megavoxel (16x256x256,
anisotropy 2, from ``neuroinverse.simulators.neuropil``):

* prediction: the ci network (MALA-tiny, 13k parameters) and the full-profile network
  (MALA-small, 0.63 M parameters) with untrained weights (the cost does not depend on them),
  whole volume with reflect padding (``predict_volume_affinities``), on the CPU with ``--threads``
  threads and on CUDA when available;
* fragments (2-D watershed per section) and median agglomeration over the 19 thresholds
  0.05-0.95, on the CPU, fed with a stand-in for a trained network's output: the
  ground-truth affinities blurred in xy (σ = 1 voxel) plus Gaussian noise (σ = 0.15),
  clipped to [0, 1] (untrained affinities would give a meaningless fragment count).

    python benchmarks/mala_throughput.py [--threads 2] [--device auto|cpu|cuda]

Writes a Markdown table to stdout and to ``benchmarks/results/mala_throughput.md``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from neuroinverse.labels import affinities_from_labels
from neuroinverse.models import UNet
from neuroinverse.runtime import resolve_device, time_call
from neuroinverse.segmentation import agglomerate, predict_volume_affinities, watershed_fragments
from neuroinverse.simulators import grow_boundary, simulate_neuropil

PAPER_S_PER_MVX = 2.6
NETS = {
    "MALA-tiny (ci)": dict(
        base_channels=8, depth=2, channel_multiplier=2, downsample=(1, 2, 2), kernel_size=[(1, 3, 3), (3, 3, 3)]
    ),
    "MALA-small (full)": dict(
        base_channels=12, depth=3, channel_multiplier=3, downsample=[(1, 3, 3), (1, 3, 3)], kernel_size=3
    ),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--device", default="auto", help="extra device for prediction (cuda when available)")
    ap.add_argument("--shape", type=int, nargs=3, default=(16, 256, 256), help="volume shape z y x")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "mala_throughput.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = tuple(args.shape)
    mvx = float(np.prod(shape)) / 1e6
    n_tubes = max(int(round(25 * shape[1] * shape[2] / 96**2)), 1)
    vol = simulate_neuropil(shape=shape, anisotropy=2, n_tubes=n_tubes, seed=0)
    rng = np.random.default_rng(0)
    aff = affinities_from_labels(grow_boundary(vol.labels.astype(np.int64)))
    aff = np.clip(ndimage.gaussian_filter(aff, (0, 0, 1, 1)) + rng.normal(0, 0.15, aff.shape), 0, 1)
    thresholds = np.round(np.arange(0.05, 0.96, 0.05), 2)

    t_frag = time_call(lambda: watershed_fragments(aff), repeats=3, warmup=1)
    frags = watershed_fragments(aff)
    t_agg = time_call(lambda: agglomerate(aff, frags, thresholds=thresholds, quantile="median"), repeats=3, warmup=1)

    devices = [torch.device("cpu")]
    extra = resolve_device(args.device)
    if extra.type != "cpu":
        devices.append(extra)
    rows = []
    for name, spec in NETS.items():
        torch.manual_seed(0)
        for dev in devices:
            net = UNet(1, 3, dims=3, padding="valid", final_activation="sigmoid", **spec).to(dev)
            block = None if name.startswith("MALA-tiny") or dev.type == "cuda" else (shape[0], 128, 128)
            t_pred = time_call(
                lambda net=net, dev=dev, block=block: predict_volume_affinities(net, vol.raw, device=dev, block=block),
                repeats=3,
                warmup=1,
            )
            total = t_pred + t_frag + t_agg
            rows.append((name, str(dev), t_pred, total, total / mvx))

    cpu = platform.processor() or platform.machine()
    head = (
        f"MALA pipeline throughput on a {shape[0]}x{shape[1]}x{shape[2]} volume ({mvx:.2f} MVx, "
        f"{int(frags.max())} fragments), torch {torch.__version__}, {args.threads} CPU threads, {cpu}"
        + (f", {torch.cuda.get_device_name(extra)}" if extra.type == "cuda" else "")
    )
    lines = [
        head,
        "",
        f"Fragments (2-D watershed per section, CPU): {t_frag:.3f} s; median agglomeration over "
        f"{thresholds.size} thresholds (CPU): {t_agg:.3f} s.",
        "",
        "| network | prediction device | prediction (s) | total (s) | s / megavoxel | paper (s / MVx) |",
        "|---|---|---|---|---|---|",
    ]
    for name, dev, tp, tot, spm in rows:
        lines.append(f"| {name} | {dev} | {tp:.3f} | {tot:.3f} | {spm:.2f} | {PAPER_S_PER_MVX} |")
    lines += [
        "",
        "Median of 3 runs after 1 warm-up. The paper's figure is for its own, much larger "
        "network on GPUs plus parallel agglomeration; the numbers are not comparable across hardware.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
