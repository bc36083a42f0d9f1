"""Run-time set-up shared by every chapter: profiles, seeding, threads, device, provenance.

A chapter calls :func:`setup` once, right after its ``parameters`` cell::

    rt = setup(profile=profile, seed=seed, device=device)
    cfg = rt.select(ci=dict(n_cells=12), full=dict(n_cells=100))

The ``ci`` profile fixes the seed and uses one intra-op thread so that printed numbers are
identical on every run (nbval re-executes the notebooks and compares them). The ``full``
profile uses every core and, with ``device="auto"``, the GPU when one is present.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ._checks import check_choice, check_positive_int

__all__ = [
    "PROFILES",
    "Runtime",
    "setup",
    "check_profile",
    "resolve_device",
    "seed_everything",
    "provenance",
    "repo_root",
    "time_call",
    "cpu_times",
    "timed",
    "background",
    "smoke_requested",
    "output_root",
    "cpu_model",
]

PROFILES: tuple[str, ...] = ("ci", "full")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise ``ValueError`` listing them."""
    return check_choice(profile, "profile", PROFILES)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. Asking for CUDA on a
    machine without it raises ``ValueError`` rather than silently falling back.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda'; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a valid torch device: {err}") from None


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    check_positive_int(seed, "seed", minimum=0)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def repo_root() -> Path:
    """The book's root folder (the one holding ``_toc.yml``), found from this file."""
    env = os.environ.get("NEUROINVERSE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "_toc.yml").exists():
            return parent
    return Path.cwd().resolve()


def _git_revision(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        rev = out.stdout.strip()
        if not rev:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Runtime:
    """What a chapter runs with: profile, seed, device, thread count and start time."""

    profile: str
    seed: int
    device: torch.device
    threads: int
    started: float = field(default_factory=time.perf_counter)
    smoke: bool = False

    def select(self, **by_profile: dict[str, Any]) -> SimpleNamespace:
        """Pick the sizes of the active profile: ``rt.select(ci={...}, full={...})``.

        Both profiles must be given and must name the same keys, so that the ``full``
        profile can never silently miss a size that ``ci`` sets.
        """
        missing = [p for p in PROFILES if p not in by_profile]
        unknown = [p for p in by_profile if p not in PROFILES]
        if missing or unknown:
            raise ValueError(
                f"select() needs exactly the profiles {PROFILES}; missing {missing}, "
                f"unknown {unknown}"
            )
        keys = {p: set(v) for p, v in by_profile.items()}
        if len({frozenset(k) for k in keys.values()}) != 1:
            raise ValueError(f"profiles name different sizes: {keys}")
        if self.smoke:
            return SimpleNamespace(**smoke_sizes(by_profile["ci"], by_profile["full"]))
        return SimpleNamespace(**by_profile[self.profile])

    def generator(self, offset: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
        """A ``torch.Generator`` seeded with ``seed + offset``, on the CPU unless ``device`` says.

        Simulations draw from CPU generators so that the data are identical on every machine.
        """
        return torch.Generator(device=device).manual_seed(self.seed + offset)

    def elapsed(self) -> float:
        """Seconds since :func:`setup`."""
        return time.perf_counter() - self.started

    def provenance(self) -> dict[str, str]:
        """Versions, git revision, device and wall time so far, as strings."""
        return provenance(self)


SMOKE_ENV = "NEUROINVERSE_SMOKE"


def smoke_requested() -> bool:
    """``$NEUROINVERSE_SMOKE`` is ``1``: run the ``full`` profile's code at the ``ci`` sizes."""
    value = os.environ.get(SMOKE_ENV, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{SMOKE_ENV} must be 0 or 1; got {value!r}")
    return value == "1"


def output_root() -> Path:
    """Where a run writes results and figures: ``_build``, or ``_build/smoke`` in a smoke run."""
    base = repo_root() / "_build"
    return base / "smoke" if smoke_requested() else base


def smoke_sizes(ci: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The configuration of a smoke run: the ``full`` profile's switches at the ``ci`` sizes.

    Booleans and strings (which code runs) come from ``full``; every other value (sizes,
    counts, tolerances, tuples of them) comes from ``ci``. A smoke run exercises the code
    that only the ``full`` profile reaches, on a CPU, in about the time of a ``ci`` run;
    its verdicts mean nothing and are never recorded as results.
    """
    return {
        k: full[k] if isinstance(full[k], (bool, str)) or full[k] is None else ci[k] for k in full
    }


def setup(profile: str = "ci", seed: int = 0, device: str = "auto") -> Runtime:
    """Prepare a chapter run: check the profile, seed everything, fix threads, pick a device.

    Args:
        profile: ``"ci"`` (two CPU cores, deterministic, ≤ 90 s) or ``"full"`` (paper scale).
        seed: non-negative integer seed for every generator.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``.

    With ``$NEUROINVERSE_SMOKE=1`` (``neuroinverse run SLUG --profile full --smoke``) the
    ``full`` profile runs at the ``ci`` sizes (:func:`smoke_sizes`); any other profile is
    refused.

    Returns:
        The :class:`Runtime` the chapter uses.
    """
    check_profile(profile)
    smoke = smoke_requested()
    if smoke and profile != "full":
        raise ValueError(f"a smoke run exercises the full profile's code; got profile {profile!r}")
    seed_everything(seed)
    dev = resolve_device(device)
    if profile == "ci":
        # One intra-op thread: the same floating-point reduction order on every run.
        torch.set_num_threads(1)
    if smoke:
        # The full profile's code at the ci sizes, with the ci profile's determinism.
        torch.set_num_threads(1)
        print(
            "SMOKE RUN: the full profile's code at the ci sizes; its verdicts mean nothing "
            "and are written to _build/smoke, never to the results",
            flush=True,
        )
    threads = torch.get_num_threads()
    return Runtime(profile=profile, seed=int(seed), device=dev, threads=threads, smoke=smoke)


def provenance(rt: Runtime | None = None) -> dict[str, str]:
    """Versions of the main packages, git revision, device and wall time, as strings."""
    import matplotlib
    import xarray

    info = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "xarray": xarray.__version__,
        "matplotlib": matplotlib.__version__,
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "git_revision": _git_revision(repo_root()),
    }
    if rt is not None:
        info.update(
            profile=rt.profile,
            seed=str(rt.seed),
            device=str(rt.device),
            device_name=(
                torch.cuda.get_device_name(rt.device)
                if rt.device.type == "cuda"
                else platform.processor() or "cpu"
            ),
            threads=str(rt.threads),
            smoke=str(rt.smoke),
            wall_time_s=f"{rt.elapsed():.1f}",
        )
    return info


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 (the math libraries' code paths, and so
    the rounding of every trained network, differ with it)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return (
        f"{name or platform.processor() or 'unknown'}"
        f"{', AVX-512' if 'avx512f' in flags.split() else ''}"
    )


def timed(fn):
    """Run ``fn()`` once; return ``(result, wall seconds)`` (CUDA synchronised).

    For work too expensive to repeat just to time it (an MCMC run, say).
    """
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def time_call(fn, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls.

    CUDA work is synchronised before each clock read so GPU timings are honest.
    """
    check_positive_int(repeats, "repeats")
    check_positive_int(warmup, "warmup", minimum=0)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cpu_times(fns, *, repeats: int = 5, block: float = 0.05) -> np.ndarray:
    """Median CPU seconds per call of each of ``fns``, for scaling laws fitted across sizes.

    Each fn is called once to warm up (numba compiles on the first call), once more to size
    its block: a block repeats the fn as often as needed to last about ``block`` seconds, so
    that timer and scheduling noise matter little even for millisecond calls. ``repeats``
    rounds then time one block of every fn in turn (interleaved, so that a drift of the
    machine's speed touches every fn alike instead of tilting a fitted slope); the result is
    the median over rounds of each fn's CPU time (``time.process_time``) per call.

    Returns:
        float64 array ``(len(fns),)``.
    """
    fns = list(fns)
    if not fns or repeats < 1 or not block > 0:
        raise ValueError(
            f"need at least one fn, repeats >= 1 and block > 0; got {len(fns)}, {repeats}, {block}"
        )
    ks = []
    for fn in fns:
        fn()
        t0 = time.process_time()
        fn()
        ks.append(max(1, int(np.ceil(block / max(time.process_time() - t0, 1e-6)))))
    per_call = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for j, (fn, k) in enumerate(zip(fns, ks, strict=True)):
            t0 = time.process_time()
            for _ in range(k):
                fn()
            per_call[r, j] = (time.process_time() - t0) / k
    return np.median(per_call, axis=0)


_POOLS: dict = {}


def _one_thread_worker() -> None:
    """Initialiser of the background workers: one torch and one BLAS thread, as the ci kernel."""
    torch.set_num_threads(1)


def _pool(workers: int):
    if workers not in _POOLS:
        import atexit

        from joblib.externals.loky import ProcessPoolExecutor

        # loky: fresh interpreters (no fork of a process that has run torch), functions sent
        # with cloudpickle, so a function defined in a notebook cell can run there
        ex = ProcessPoolExecutor(
            max_workers=workers,
            initializer=_one_thread_worker,
            env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
        _POOLS[workers] = ex
        atexit.register(ex.shutdown, wait=False)
    return _POOLS[workers]


def background(fn, /, *args, workers: int = 1, **kwargs):
    """Start ``fn(*args, **kwargs)`` in a background process; return a
    ``concurrent.futures.Future``.

    The ci profile runs a chapter's kernel on one thread of a two-core machine; independent
    work (a classifier test, another seed's fit) runs here on the other core while the kernel
    goes on. Jobs run one after another in a pool of ``workers`` processes (one pool per
    ``workers`` value, started on first use, each process on one thread), so ``.result()`` is
    exactly what ``fn(*args, **kwargs)`` returns in a one-thread kernel: pass seeds or
    generators explicitly, never rely on the kernel's global random state. Exceptions are
    re-raised by ``.result()``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    check_positive_int(workers, "workers")
    return _pool(workers).submit(fn, *args, **kwargs)
