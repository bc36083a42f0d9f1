"""The command ``neuroinverse segment RAW.zarr OUT.zarr``: the blockwise path from a shell.

``neuroinverse segment`` (the book's command line, :mod:`neuroinverse.cli`) runs this module
as ``python -m neuroinverse.segmentation.blockwise_cli`` with the same arguments, so that the
book's core imports no domain package. Examples::

    neuroinverse segment aff.zarr seg.zarr --workers 2 --block 64,256,256
    neuroinverse segment raw.zarr seg.zarr --model unet.pt --thresholds 0.3,0.5,0.7
    neuroinverse segment aff.zarr seg.zarr --scheduler tcp://head:8786   # a running cluster

The input is a zarr array: raw ``(Z, Y, X)`` with ``--model`` (a U-Net saved whole with
``torch.save(model, path)``; loading it unpickles the file, so use only files you made) or
affinities ``(3, Z, Y, X)``. An interrupted run restarts where it stopped when the same
command is given again; a finished output is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__: list[str] = []  # a command, not part of the front door (``python -m`` runs it)

USAGE_ERROR = 2


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 64,256,256; got {text!r}"
        ) from None
    if len(vals) != 3 or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers z,y,x; got {text!r}")
    return vals


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.3,0.5; got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neuroinverse segment",
        description="Segment a zarr volume block by block on Dask (predict, fragments, "
        "quantile agglomeration, relabel).",
    )
    p.add_argument(
        "input", help="zarr array: raw (Z, Y, X) with --model, or affinities (3, Z, Y, X)"
    )
    p.add_argument("output", help="output zarr group (its directory must exist)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument(
        "--block", type=_ints, default=(64, 256, 256), help="block z,y,x (default 64,256,256)"
    )
    p.add_argument(
        "--thresholds", "--threshold", type=_floats, default=(0.5,),
        help="agglomeration thresholds, comma separated (default 0.5)",
    )  # fmt: skip
    p.add_argument("--quantile", default="median", help="boundary statistic (default median)")
    p.add_argument(
        "--bins", type=int, default=256,
        help="affinity levels of each fragment pair's histogram (default 256); 0 keeps exact "
        "quantiles, with a table that grows with the boundary area",
    )  # fmt: skip
    p.add_argument("--model", default=None, help="U-Net file from torch.save(model, path)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument(
        "--memory-limit", default="auto", help="per local worker, e.g. 2GiB (default auto)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a finished or different output"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def segment_main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (2 for bad arguments or input)."""
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print(
            f"neuroinverse segment: error: --workers must be at least 1; got {args.workers}",
            file=sys.stderr,
        )
        return USAGE_ERROR
    import torch

    from .blockwise import segment_blockwise, summary

    try:
        model = None
        if args.model is not None:
            if not Path(args.model).is_file():
                raise FileNotFoundError(f"model file {args.model} does not exist")
            model = torch.load(args.model, map_location="cpu", weights_only=False)
        client = None
        if args.scheduler is not None:
            from distributed import Client

            client = Client(args.scheduler)
        elif args.memory_limit != "auto":
            from distributed import Client, LocalCluster

            client = Client(
                LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit
                )
            )
        result = segment_blockwise(
            args.input, args.output, block=args.block, thresholds=args.thresholds,
            quantile=args.quantile, bins=args.bins or None, model=model, client=client,
            workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"neuroinverse segment: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(json.dumps(summary(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(segment_main())
