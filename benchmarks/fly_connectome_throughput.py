"""Connectome-network throughput: neuron-steps per second and one training step (fly-connectome).

Simulates the leaky rectified-synapse network compiled from the shipped connectome for the
21-type T4 subcircuit at R = 4 and R = 6 and for all 65 types at R = 15, with a batch of 12
edge directions (the chapter's tuning sweep), on the CPU with 1 and 2 threads and on CUDA
when present; times one motion-decoding training step (forward, backward through time,
Adam) at the chapter's ci size; and writes ``benchmarks/results/fly_connectome_throughput.md``.
Sparse message passing costs one gather and one ``index_add`` per step over the edge list,
so the time per step should grow with the number of edges, which the table shows beside it.

    .venv/bin/python benchmarks/fly_connectome_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from neuroinverse.data import data_path
from neuroinverse.inference import MotionDecoder, train_motion_decoder
from neuroinverse.models import ConnectomeNetwork
from neuroinverse.simulators import T4_SUBCIRCUIT, HexLattice, compile_connectome, load_connectome

OUT = Path(__file__).resolve().parent / "results" / "fly_connectome_throughput.md"


def measure(graph, device: str, n_steps: int, batch: int = 12) -> tuple[float, float]:
    """(neuron-steps per second, seconds per Euler step) for ``batch`` stimuli of ``n_steps``."""
    net = ConnectomeNetwork(graph, tau_min=0.005).to(device)
    lat = HexLattice(graph.extent)
    stim = torch.rand(batch, n_steps, lat.n_columns, generator=torch.Generator().manual_seed(0)).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.no_grad():
        net(stim[:, :2], dt=0.005)  # warm-up
        sync()
        t0 = time.perf_counter()
        net(stim, dt=0.005)
        sync()
    sec = time.perf_counter() - t0
    return batch * n_steps * graph.n_neurons / sec, sec / n_steps


def train_step_seconds(spec, device: str) -> float:
    g = compile_connectome(spec, extent=4, cell_types=T4_SUBCIRCUIT)
    net = ConnectomeNetwork(g, tau_min=0.01).to(device)
    model = MotionDecoder(net, g, ["Tm3", "T4a", "T4b", "T4c", "T4d"]).to(device)
    kw = dict(batch=4, n_frames=30, dt=0.01, lr=1e-2, speed_range=(5.0, 20.0), n_settle=20, seed=0, progress=False)
    train_motion_decoder(model, HexLattice(4), n_steps=1, **kw)  # warm-up
    t0 = time.perf_counter()
    train_motion_decoder(model, HexLattice(4), n_steps=3, **kw)
    return (time.perf_counter() - t0) / 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    args = ap.parse_args()
    spec = load_connectome(data_path("fly-connectome/fib25-fib19_v2.2.json"))
    graphs = {
        "21 types, R = 4": compile_connectome(spec, extent=4, cell_types=T4_SUBCIRCUIT),
        "21 types, R = 6": compile_connectome(spec, extent=6, cell_types=T4_SUBCIRCUIT),
        "65 types, R = 15": compile_connectome(spec, extent=15),
    }
    devices = [("cpu", 1), ("cpu", 2)] + ([("cuda", 0)] if torch.cuda.is_available() else [])
    rows = []
    for dev, threads in devices:
        if threads:
            torch.set_num_threads(threads)
        name = f"cpu ({threads} thread{'s' if threads > 1 else ''})" if threads else torch.cuda.get_device_name(0)
        for label, g in graphs.items():
            n_steps = 10 if (args.quick or g.n_edges > 1e6) and dev == "cpu" else 100
            rate, sec = measure(g, dev, n_steps)
            rows.append((name, label, g.n_neurons, g.n_edges, sec, rate))
            print(rows[-1])
    torch.set_num_threads(2)
    step = train_step_seconds(spec, "cpu")
    lines = [
        "# Connectome-network throughput (fly-connectome)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}. Batch of 12",
        "stimuli, Euler step, no gradient. Written by `benchmarks/fly_connectome_throughput.py`.",
        "",
        "| device | network | neurons | edges | s per step | neuron-steps / s |",
        "|---|---|---|---|---|---|",
        *[f"| {d} | {lab} | {n:,} | {e:,} | {s:.2e} | {r:.3g} |" for d, lab, n, e, s, r in rows],
        "",
        f"One training step (21 types, R = 4, batch 4, 20 settling + 30 BPTT steps, Adam; CPU, 2 threads): "
        f"{step:.2f} s.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
