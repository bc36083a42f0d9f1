"""Command line: ``neuroinverse run SLUG``, ``neuroinverse build``, ``neuroinverse status``.

Examples::

    neuroinverse run deepspike                      # ci profile, CPU or GPU (auto)
    neuroinverse run deepspike --profile full --device cuda
    neuroinverse run deepspike --profile full --smoke   # full code paths at ci sizes, into
                                                        # _build/smoke
    neuroinverse build --profile ci                 # run the chapters that changed, build
                                                    # _build/html
    neuroinverse build --jobs 2 --force             # re-run every chapter, two at a time
    neuroinverse build --no-execute                 # build from _build/executed as it is
    neuroinverse status --json                      # recorded claims and verdicts
    neuroinverse readme [--check]                   # README's scorecard block from a ci run
    neuroinverse segment RAW.zarr OUT.zarr --workers 2 --block 64,256,256 [--model unet.pt]
                                                    # blockwise segmentation on Dask
"""

from __future__ import annotations

import argparse
import json
import sys

from .runtime import PROFILES

__all__ = ["main"]

#: Exit status for a bad chapter name, profile or device (like argparse's usage errors).
USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neuroinverse", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def profile_arg(sp):
        sp.add_argument(
            "--profile", default="ci", help=f"one of {', '.join(PROFILES)} (default ci)"
        )

    r = sub.add_parser("run", help="execute one chapter into _build/executed")
    r.add_argument("slug", help="chapter slug, e.g. deepspike")
    profile_arg(r)
    r.add_argument("--seed", type=int, default=0, help="non-negative integer seed (default 0)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    r.add_argument(
        "--smoke",
        action="store_true",
        help="with --profile full: run the full profile's code at the ci sizes into "
        "_build/smoke (verdicts not checked, never recorded as results)",
    )
    r.add_argument(
        "--timeout", type=float, default=None, help="per-cell time limit in seconds (default 3600)"
    )
    r.add_argument(
        "--record",
        action="store_true",
        help="with --profile full: keep the results under recorded/full/ with the hardware, date "
        "and commit, for the scorecard (commit that file)",
    )

    rec = sub.add_parser(
        "record", help="keep a finished full-profile run's results under recorded/full/"
    )
    rec.add_argument("slug", help="chapter slug, e.g. deepspike")

    b = sub.add_parser("build", help="run the chapters that changed and build the HTML book")
    profile_arg(b)
    b.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=(
            "chapters executed at once, each in its own process (default: the cores, at most "
            "one per 4 GiB free)"
        ),
    )
    b.add_argument(
        "--force",
        action="store_true",
        help="re-execute every chapter, even those unchanged since their run",
    )
    b.add_argument(
        "--no-execute",
        action="store_true",
        help="do not run the chapters; use the notebooks already in _build/executed",
    )

    s = sub.add_parser("status", help="print every chapter's recorded claims and verdicts")
    s.add_argument("--json", action="store_true", help="print the rows as JSON")

    m = sub.add_parser("readme", help="rewrite the README's scorecard block from the ci results")
    m.add_argument("--check", action="store_true", help="only check; exit 1 if the README is stale")

    g = sub.add_parser(
        "segment",
        add_help=False,
        help="segment a zarr volume block by block on Dask (--workers, --block, --thresholds, "
        "--overwrite; `neuroinverse segment --help` for all)",
    )
    g.add_argument("segment_args", nargs=argparse.REMAINDER)  # parsed by the command itself
    return p


def _usage_error(msg: str) -> int:
    print(f"neuroinverse: error: {msg}", file=sys.stderr)
    return USAGE_ERROR


def _run(args) -> int:
    from ._checks import check_positive_int
    from .book import run_chapter
    from .chapters import get_chapter
    from .runtime import check_profile, resolve_device

    try:
        chapter = get_chapter(args.slug)
        check_profile(args.profile)
        resolve_device(args.device)
        check_positive_int(args.seed, "seed", minimum=0)
        if args.smoke and args.profile != "full":
            raise ValueError(
                f"--smoke runs the full profile's code at the ci sizes; use it with "
                f"--profile full (got --profile {args.profile})"
            )
        if args.record and (args.profile != "full" or args.smoke):
            raise ValueError(
                "--record keeps full-profile results: use it with --profile full, without --smoke"
            )
    except ValueError as err:
        return _usage_error(str(err))
    print(
        f"running {chapter.slug} ({chapter.source}) at profile {args.profile}"
        f"{' (smoke: ci sizes)' if args.smoke else ''}, seed {args.seed}, device {args.device}",
        flush=True,
    )
    run = run_chapter(
        chapter.slug,
        profile=args.profile,
        seed=args.seed,
        device=args.device,
        timeout=args.timeout,
        smoke=args.smoke,
    )
    if not run.ok:
        print(
            f"{chapter.slug}: FAILED after {run.wall_s:.1f} s wall: {run.error}\n"
            f"  executed notebook with the traceback: {run.output}",
            file=sys.stderr,
        )
        return 1
    peak = _record_run(chapter, args, run.wall_s)
    print(f"{chapter.slug}: done in {run.wall_s:.1f} s wall{peak} -> {run.output}")
    if args.record:
        return _record(args)
    return 0


def _record(args) -> int:
    from .recorded import record_results

    try:
        path = record_results(args.slug)
    except (ValueError, FileNotFoundError) as err:
        return _usage_error(str(err))
    print(f"{args.slug}: full-profile results recorded in {path} (commit it)")
    return 0


def _record_run(chapter, args, wall_s: float) -> str:
    """Write the cache record of a successful run (not for smoke runs); return the peak-memory
    note."""
    import resource
    import time

    from .build_cache import CacheRecord, chapter_key, write_record
    from .runtime import resolve_device

    peak_mib = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )  # the kernel's peak (Linux: KiB)
    if not args.smoke:
        key = chapter_key(
            chapter,
            profile=args.profile,
            seed=args.seed,
            device=resolve_device(args.device).type,
            smoke=False,
        )
        if (
            args.seed == 0 and args.device == "auto"
        ):  # only the runs a build would make stand in for one
            finished = time.strftime("%Y-%m-%d %H:%M", time.localtime())
            write_record(
                CacheRecord(
                    chapter.slug, key, args.profile, round(wall_s, 1), round(peak_mib, 1), finished
                )
            )
    return f", peak {peak_mib / 1024:.2f} GiB"


def _build(args) -> int:
    import time

    from .book import build_html, stage
    from .build_cache import default_jobs, execute_chapters
    from .runtime import check_profile

    try:
        check_profile(args.profile)
        jobs = default_jobs() if args.jobs is None else args.jobs
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1; got {jobs}")
    except ValueError as err:
        return _usage_error(str(err))
    if not args.no_execute:
        t0 = time.perf_counter()
        print(f"== executing the chapters at {args.profile}, {jobs} at a time", flush=True)
        outcomes = execute_chapters(
            profile=args.profile, jobs=jobs, force=args.force, report=_flush_print
        )
        ran = [o for o in outcomes if not o.reused]
        failed = [o.slug for o in outcomes if not o.ok]
        print(
            f"== {len(ran)} executed, {len(outcomes) - len(ran)} reused, "
            f"{time.perf_counter() - t0:.1f} s wall in all",
            flush=True,
        )
        if failed:
            print(
                f"neuroinverse build: chapters failed: {', '.join(failed)}; "
                "see _build/logs and _build/executed",
                file=sys.stderr,
            )
            return 1
    try:
        src = stage()
    except FileNotFoundError as err:
        print(f"neuroinverse build: {err}", file=sys.stderr)
        return 1
    print(f"staged the book in {src}", flush=True)
    rc = build_html()
    if rc != 0:
        print(f"neuroinverse build: jupyter-book failed (exit {rc})", file=sys.stderr)
        return 1
    print("built _build/html/index.html")
    return 0


def _flush_print(line: str) -> None:
    print(line, flush=True)


def _status(args) -> int:
    from .results import scorecard_rows

    rows = scorecard_rows()
    keys = ["chapter", "claim", "paper", "ours", "control", "rule", "profile", "verdict"]
    if args.json:
        print(
            json.dumps(
                [{k: r[k] for k in keys + ["statement"]} for r in rows],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    table = [keys] + [[r[k] for k in keys] for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(keys))]
    for i, row in enumerate(table):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def _readme(args) -> int:
    from .book import update_readme

    try:
        current = update_readme(check=args.check)
    except (ValueError, FileNotFoundError) as err:
        print(f"neuroinverse readme: {err}", file=sys.stderr)
        return 1
    if current:
        print("README.md scorecard is up to date")
        return 0
    if args.check:
        print(
            "README.md scorecard differs from the recorded ci results; run `neuroinverse readme`",
            file=sys.stderr,
        )
        return 1
    print("README.md scorecard rewritten")
    return 0


def _segment(args) -> int:
    """``neuroinverse segment``: the segmentation package's own command, run as a module
    (``python -m neuroinverse.segmentation.blockwise_cli``) so that the core imports no domain
    package, as ``run`` executes chapters in their own process."""
    import subprocess

    cmd = [sys.executable, "-m", "neuroinverse.segmentation.blockwise_cli", *args.segment_args]
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neuroinverse`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["segment"]:  # all of its arguments, --help included, go to the command
        return _segment(argparse.Namespace(segment_args=argv[1:]))
    args = _parser().parse_args(argv)
    commands = {
        "run": _run,
        "record": _record,
        "build": _build,
        "status": _status,
        "readme": _readme,
        "segment": _segment,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
