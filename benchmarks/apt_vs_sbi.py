"""The book's APT against the sbi package's NPE_C on two moons: training wall time and C2ST.

Same simulator (the book's two moons), same budget (``--rounds`` × ``--sims``), same
observation (sbibm observation 1, ``TWO_MOONS_X_O``), same metric (the book's C2ST with
sbibm's MLP classifier, 1000 posterior samples against 1000 samples of the book's grid
reference posterior), for several seeds. Both sides use a MAF with 5 transforms and two
hidden layers of 50 units (sbi's ``density_estimator="maf"`` default) and 10 atoms;
the book's chapter flow (NSF, 2 transforms × 32) is a third row. Each side trains with its
own defaults: sbi (batch 200, lr 5e-4, stop after 20 epochs without validation improvement,
no step cap), the book (batch 100, lr 1e-3, patience 10 epochs, at most 300 steps a round).
sbi is used here only as an external cross-check, never by the book's chapters.

    python benchmarks/apt_vs_sbi.py [--rounds 4] [--sims 250] [--seeds 0 1 2] [--threads 2]

Writes a Markdown table to stdout and to ``benchmarks/results/apt_vs_sbi.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from neuroinverse.inference import APT, run_npe
from neuroinverse.metrics import c2st
from neuroinverse.models import ConditionalFlow
from neuroinverse.simulators import (
    TWO_MOONS_X_O,
    two_moons,
    two_moons_prior,
    two_moons_reference_posterior,
)

OUT = Path(__file__).resolve().parent / "results" / "apt_vs_sbi.md"


def run_ours(rounds: int, sims: int, seed: int, flow: dict) -> tuple[torch.Tensor, float, float]:
    torch.manual_seed(seed)
    q = ConditionalFlow(2, 2, **flow)
    t0 = time.perf_counter()
    res = run_npe(
        two_moons_prior(),
        two_moons,
        torch.tensor(TWO_MOONS_X_O),
        density=q,
        n_rounds=rounds,
        simulations_per_round=sims,
        method=APT(num_atoms=10),
        generator=torch.Generator().manual_seed(seed),
        progress=False,
    )
    total = time.perf_counter() - t0
    samples = res.posterior.sample(1000, generator=torch.Generator().manual_seed(10_000 + seed))
    return samples, res.train_seconds, total


def run_sbi(rounds: int, sims: int, seed: int) -> tuple[torch.Tensor, float, float]:
    from sbi.inference import NPE_C
    from sbi.utils import BoxUniform
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    prior = BoxUniform(low=-torch.ones(2), high=torch.ones(2))
    x_o = torch.tensor([TWO_MOONS_X_O])
    # sbi logs to ./sbi-logs by default; keep its TensorBoard files out of the checkout.
    logdir = tempfile.mkdtemp(prefix="sbi-logs-")
    inference = NPE_C(
        prior=prior, density_estimator="maf", show_progress_bars=False, summary_writer=SummaryWriter(logdir)
    )
    proposal = prior
    train_s = 0.0
    t0 = time.perf_counter()
    posterior = None
    for _ in range(rounds):
        theta = proposal.sample((sims,))
        x = two_moons(theta, generator=gen)
        t1 = time.perf_counter()
        estimator = inference.append_simulations(theta, x, proposal=proposal).train(num_atoms=10)
        train_s += time.perf_counter() - t1
        posterior = inference.build_posterior(estimator)
        proposal = posterior.set_default_x(x_o)
    total = time.perf_counter() - t0
    samples = posterior.sample((1000,), x=x_o, show_progress_bars=False)
    return samples, train_s, total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--sims", type=int, default=250)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    ref = two_moons_reference_posterior(TWO_MOONS_X_O, 1000, generator=torch.Generator().manual_seed(99))
    rows = {"book APT, MAF 5×(50, 50)": [], "sbi 0.27 NPE_C, maf (5×50)": [], "book APT, NSF 2×(32, 32) (chapter)": []}
    for seed in args.seeds:
        for name in rows:
            if name.startswith("sbi"):
                samples, train_s, total = run_sbi(args.rounds, args.sims, seed)
            elif "MAF" in name:
                samples, train_s, total = run_ours(
                    args.rounds, args.sims, seed, dict(kind="maf", transforms=5, hidden=(50, 50))
                )
            else:
                samples, train_s, total = run_ours(
                    args.rounds, args.sims, seed, dict(kind="nsf", transforms=2, hidden=(32, 32))
                )
            acc = c2st(ref, samples, seed=seed)
            rows[name].append((train_s, total, acc))
            print(f"seed {seed} {name}: train {train_s:.1f} s, total {total:.1f} s, C2ST {acc:.3f}", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# APT (book) vs sbi NPE_C on two moons",
        "",
        f"Budget {args.rounds} rounds × {args.sims} simulations, sbibm observation 1, 10 atoms; "
        f"C2ST (sbibm MLP classifier, 5-fold) of 1000 posterior samples against 1000 grid-reference samples; "
        f"seeds {args.seeds}. Machine: {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} CPUs, torch threads {args.threads}, load average at the end {load:.1f}; "
        f"torch {torch.__version__}.",
        "",
        "| implementation | train wall time (s), median | total wall time (s), median | C2ST per seed | C2ST median |",
        "|---|---|---|---|---|",
    ]
    for name, vals in rows.items():
        a = np.array(vals)
        lines.append(
            f"| {name} | {np.median(a[:, 0]):.1f} | {np.median(a[:, 1]):.1f} | "
            f"{', '.join(f'{v:.3f}' for v in a[:, 2])} | {np.median(a[:, 2]):.3f} |"
        )
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
