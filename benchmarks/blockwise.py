"""Blockwise segmentation on Dask: seconds per megavoxel and peak memory per worker.

Against the number of workers (1, 2), the block size and the volume size, on affinity volumes
written to zarr block by block (never held whole), up to a volume several times larger than one
worker's memory limit. Peak memory per worker is the high-water
mark of each worker process's resident set (``VmHWM`` in ``/proc/self/status``, reset through
``/proc/self/clear_refs`` when the run starts; ``ru_maxrss`` would not do: Linux keeps it
across ``exec``, so a spawned worker would report its parent's peak), in a fresh LocalCluster
per run; the driver's own peak (it holds the region graph and runs the agglomeration) is
reported separately, measured the same way. Usage::

    .venv/bin/python benchmarks/blockwise.py                     # the sizes in results/blockwise.md
    .venv/bin/python benchmarks/blockwise.py --shapes 64,512,512 --memory-limit 1GiB --bins 0
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def write_affinities(path: Path, shape, chunk, cell=32, seed=0):
    """Cells of about ``cell`` voxels across in xy (walls every ``cell`` rows and ``cell + 1``
    columns, shifted every 8 sections), membranes with low affinity, noise; written chunk by
    chunk."""
    import zarr

    z = zarr.create_array(str(path), shape=(3, *shape), chunks=(3, *chunk), dtype="float32")
    rng = np.random.default_rng(seed)
    for z0 in range(0, shape[0], chunk[0]):
        for y0 in range(0, shape[1], chunk[1]):
            for x0 in range(0, shape[2], chunk[2]):
                sl = tuple(slice(a, min(a + c, s)) for a, c, s in zip((z0, y0, x0), chunk, shape, strict=True))
                zz, yy, xx = np.meshgrid(*[np.arange(s.start, s.stop) for s in sl], indexing="ij")
                wall_y = (yy % cell == 0) | ((xx + 5 * (zz // 8)) % (cell + 1) == 0)
                a = np.where(wall_y, 0.15, 0.85)[None].repeat(3, 0)
                a = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
                z[(slice(None), *sl)] = a


def reset_peak() -> None:
    """Reset this process's resident-set high-water mark (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mib() -> float:
    """This process's resident-set high-water mark since the last :func:`reset_peak`, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run(shape, block, workers, memory_limit, tmp, bins, cell):
    from distributed import Client, LocalCluster

    from neuroinverse.segmentation import segment_blockwise

    src = tmp / f"aff_{'x'.join(map(str, shape))}_{cell}.zarr"
    if not src.exists():
        write_affinities(src, shape, block, cell=cell)
    out = tmp / "out.zarr"
    with Client(LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit)) as client:
        client.run(reset_peak)
        reset_peak()
        t0 = time.perf_counter()
        r = segment_blockwise(
            src, out, block=block, thresholds=(0.3, 0.5, 0.7), bins=bins, client=client, progress=True, overwrite=True
        )
        wall = time.perf_counter() - t0
        peaks = client.run(peak_mib)
        driver = peak_mib()
    mvx = np.prod(shape) / 1e6
    return dict(
        shape="x".join(map(str, shape)),
        mvx=mvx,
        aff_mib=4 * 3 * np.prod(shape) / 2**20,
        block="x".join(map(str, block)),
        blocks=r.n_blocks,
        workers=workers,
        s_per_mvx=wall / mvx,
        peak_worker_mib=max(peaks.values()),
        driver_mib=driver,
        fragments=r.n_fragments,
        bins=bins or "exact",
        pairs=r.graph["pairs"],
        edges=r.graph["edges"],
        entries=r.graph["entries"],
        table_mib=r.graph["bytes"] / 2**20,
        merge_s=r.seconds["agglomerate"],
        cell=cell,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", nargs="+", default=["32,512,512", "64,1024,1024", "128,1024,2048"])
    p.add_argument("--blocks", nargs="+", default=["32,256,256"])
    p.add_argument("--bins", nargs="+", type=int, default=[256], help="0: exact quantiles")
    p.add_argument("--cells", nargs="+", type=int, default=[32], help="cell width in voxels (xy)")
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--memory-limit", default="1GiB", help="per worker (a worker's imports alone take ~0.4 GiB)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "blockwise.md"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.shapes:
            for b in args.blocks:
                for w in args.workers:
                    for bins in args.bins:
                        for cell in args.cells:
                            shape = tuple(map(int, s.split(",")))
                            block = tuple(map(int, b.split(",")))
                            rows.append(run(shape, block, w, args.memory_limit, Path(tmp), bins or None, cell))
                            print(rows[-1], flush=True)
            for f in Path(tmp).glob("aff_*.zarr"):  # one input at a time on disk
                shutil.rmtree(f)
    head = [
        "# Blockwise segmentation on Dask (benchmarks/blockwise.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
        f"LocalCluster, one thread per worker, memory_limit {args.memory_limit} per worker; "
        "synthetic affinities (float32, 3 channels) written to zarr block by block; thresholds 0.3, 0.5, "
        "0.7. Wall time includes the cluster's start-up. Peak memory: each process's resident-set "
        "high-water mark during the run (VmHWM, reset at its start); a worker's imports alone take "
        "about 0.4 GiB.",
        "",
        "| volume | Mvx | affinities (MiB) | cell | block | blocks | workers | bins | s / Mvx | merge (s) "
        "| peak per worker (MiB) | driver peak (MiB) | fragments | pairs | boundary edges | histogram entries "
        "| table (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = [
        f"| {r['shape']} | {r['mvx']:.1f} | {r['aff_mib']:.0f} | {r['cell']} | {r['block']} | {r['blocks']} "
        f"| {r['workers']} | {r['bins']} | {r['s_per_mvx']:.2f} | {r['merge_s']:.1f} | {r['peak_worker_mib']:.0f} "
        f"| {r['driver_mib']:.0f} "
        f"| {r['fragments']} | {r['pairs']} | {r['edges']} | {r['entries']} | {r['table_mib']:.1f} |"
        for r in rows
    ]
    tail = [
        "",
        "Workers hold one block with its context at a time (and read only their own fragments' columns of "
        "the fragment map), so their peak depends on the block, not on the volume. The driver holds the "
        "region graph, one histogram of at most `bins` entries per fragment pair, and runs the merge loop: "
        "its memory grows with the number of fragment pairs, i.e. with the volume divided by the fragments' "
        "size, not with the voxels themselves.",
    ]
    text = "\n".join(head + body + tail) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
