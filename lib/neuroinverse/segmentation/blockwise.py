"""Blockwise segmentation of volumes larger than memory, on Dask: predict, fragment, merge.

The pipeline of :mod:`neuroinverse.segmentation.agglomerate` (Funke et al., IEEE TPAMI 41(7),
2019, Sec. 3) for volumes in zarr that do not fit in one machine's memory, run block by
block by a ``dask.distributed`` client (a laptop's ``LocalCluster``, or any cluster a lab
already has, e.g. through ``dask-jobqueue`` on SLURM; there is no scheduler of our own):

1. **prediction** (:func:`predict_blockwise`): the valid-convolution U-Net on each output
   block read with the network's context (reflected at the volume's border, as
   :func:`~neuroinverse.segmentation.predict_volume_affinities` pads it); block starts are
   multiples of the network's down-sampling, so each output voxel sees the same input and
   the same pooling grid as in one whole-volume pass: on the CPU, with one thread per
   worker, the affinities are bitwise those of the whole-volume prediction.
2. **fragments**: :func:`~neuroinverse.segmentation.watershed_fragments` per block, ids
   made globally unique by adding the count of the blocks before (ids ``1..F``).
   Fragments never cross a block face, so they differ from the whole-volume watershed's
   near the faces: the blockwise fragments are what they are.
3. **region graph**: each block's edges, including those across its low faces, counted
   into one histogram of quantised affinities per fragment pair
   (:func:`~neuroinverse.segmentation.blockwise_graph.block_edges`; ``bins`` levels, 256 by
   default as in waterz), saved per block and sorted into the same
   :class:`~neuroinverse.segmentation.RegionGraph` that
   :func:`~neuroinverse.segmentation.region_graph` gives for the whole volume with the same
   ``bins``. A pair's histogram has at most ``bins`` entries, so the table grows with the
   number of fragment pairs (the volume over the fragments' size), not with the voxels
   (``benchmarks/blockwise.py`` measures it). ``bins=None`` keeps exact quantiles, at the
   price of a table that grows with the boundary area.
4. **agglomeration** in one process on that graph
   (:func:`~neuroinverse.segmentation.agglomerate_graph`, the book's quantile merging),
   written to ``fragment_map`` ``(T, F + 1)``; then **relabelling** block by block into
   ``segmentation`` ``(T, Z, Y, X)``, one volume per threshold, each block reading only its
   own fragments' columns of the map. On the same fragments and affinities the result
   equals ``agglomerate(affinities, fragments, ..., bins=bins)`` at every threshold, label
   ids included (the statement the tests check; it is not a claim about the whole-volume
   watershed's fragments).

Restarts: every finished block leaves a record under ``OUT.zarr/.blockwise/<stage>/``
written after its data (atomically, by rename); a new run with the same parameters skips
recorded blocks. A block's task writes whole chunks and is idempotent, so a task that Dask
retries after its worker died writes the same bytes again: nothing is lost or duplicated.
An output that is complete, or was made with other parameters, is never overwritten unless
``overwrite=True``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._checks import check_choice
from .agglomerate import QUANTILES, RegionGraph, agglomerate_graph
from .blockwise_blocks import (
    WORK,
    BlockGrid,
    block_done,
    edges_block,
    fragment_block,
    mark_block,
    open_input,
    predict_block,
    relabel_block,
)
from .blockwise_graph import assemble_region_graph

__all__ = [
    "BlockwiseSegmentation",
    "write_volume",
    "open_segmentation",
    "predict_blockwise",
    "segment_blockwise",
    "summary",
]


@dataclass
class BlockwiseSegmentation:
    """What :func:`segment_blockwise` did.

    Attributes:
        path: the output zarr group (arrays ``fragments``, ``fragment_map``,
            ``segmentation`` and, when the input was raw, ``affinities``).
        thresholds: ``(T,)`` sorted thresholds; ``segmentation[t]`` belongs to ``thresholds[t]``.
        maps: ``(T, F + 1)`` fragment → segment maps (``agglomerate(...).maps``).
        n_fragments: ``F``.
        n_blocks: blocks in the grid.
        computed: per stage, the blocks computed in this run (the others were recorded
            by an earlier run and skipped).
        seconds: wall time per stage.
        graph: the region graph's size: fragment ``pairs``, histogram ``entries``, boundary
            ``edges`` and the table's ``bytes`` (empty if the agglomeration was recorded by
            an earlier run).
    """

    path: Path
    thresholds: np.ndarray
    maps: np.ndarray
    n_fragments: int
    n_blocks: int
    computed: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    graph: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- zarr helpers
def write_volume(path, array, *, chunks, overwrite: bool = False) -> Path:
    """Write ``array`` to a new zarr array at ``path`` (for inputs of the blockwise path)."""
    import zarr

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    a = np.asarray(array)
    z = zarr.create_array(
        str(path), shape=a.shape, chunks=tuple(chunks), dtype=a.dtype, overwrite=True
    )
    z[...] = a
    return path


def open_segmentation(path, name: str = "segmentation"):
    """An output's array as a lazy ``dask.array``: ``"segmentation"`` ``(T, Z, Y, X)``,
    ``"fragments"`` ``(Z, Y, X)``, ``"fragment_map"`` ``(T, F + 1)`` or ``"affinities"``
    ``(3, Z, Y, X)``."""
    import dask.array as da

    check_choice(name, "name", ("segmentation", "fragments", "fragment_map", "affinities"))
    return da.from_zarr(str(Path(path) / name))


def _run_stage(client, name, fn, *, retries, progress, **kwargs) -> list:
    """Run ``fn(i, **kwargs)`` for every block ``i`` of ``kwargs["grid"]`` on the client;
    the results in block order."""
    from distributed import as_completed
    from tqdm import tqdm

    big = {k: client.scatter(v, broadcast=True) for k, v in kwargs.items() if _is_big(v)}
    n_blocks = kwargs["grid"].n_blocks
    kwargs = {**kwargs, **big}
    futures = client.map(fn, range(n_blocks), retries=retries, pure=False, **kwargs)
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * n_blocks
    bar = tqdm(total=n_blocks, desc=name, disable=not progress, leave=False)
    try:
        for fut in as_completed(futures):
            results[index[fut.key]] = fut.result()  # raises the task's error
            bar.update()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    return results


def _is_big(v) -> bool:
    return isinstance(v, (torch.nn.Module, np.ndarray)) and not np.isscalar(v)


# ----------------------------------------------------------------------------- the run
def _check_block(block, shape, model) -> tuple[int, int, int]:
    b = tuple(int(x) for x in block)
    if len(b) != 3 or any(x < 1 for x in b):
        raise ValueError(f"block must be three positive ints (z, y, x); got {block!r}")
    b = tuple(min(x, s) for x, s in zip(b, shape, strict=True))
    if model is not None:
        context = tuple(r - 1 for r in model.receptive_field())
        small = [a for a in range(3) if b[a] < context[a] and b[a] < shape[a]]
        if small:
            raise ValueError(
                f"block {b} is smaller than the network's context {context} on axes {small}; "
                "each block would read more context than block"
            )
        down = model.total_downsample
        odd = [a for a in range(3) if b[a] % down[a] and b[a] < shape[a]]
        if odd:
            raise ValueError(
                f"block {b} must be a multiple of the network's down-sampling {down} on axes "
                f"{odd} (so that every block sees the same pooling grid)"
            )
        thin = [a for a in range(3) if shape[a] <= context[a] // 2]
        if thin:
            raise ValueError(f"volume {shape} is thinner than the network's margin on axes {thin}")
    return b


def _prepare_output(out: Path, params: dict, overwrite: bool) -> tuple[bool, object]:
    """Open or create the output group; returns ``(resumed, group)``."""
    import zarr

    if not out.parent.exists():
        raise FileNotFoundError(f"the output's directory {out.parent} does not exist")
    if out.exists():
        if not (out / "zarr.json").exists():
            raise FileExistsError(f"{out} exists and is not a zarr group; refusing to touch it")
        old = dict(zarr.open_group(str(out), mode="r").attrs).get("blockwise")
        if old is None:
            raise FileExistsError(
                f"{out} is a zarr group not written by segment_blockwise; refusing to touch it"
            )
        if overwrite:
            shutil.rmtree(out)
        elif old.get("complete"):
            raise FileExistsError(
                f"{out} already holds a finished segmentation; pass overwrite=True "
                "(--overwrite) to replace it"
            )
        elif {k: v for k, v in old.items() if k != "complete"} != params:
            diff = sorted(k for k in params if old.get(k) != params[k])
            raise FileExistsError(
                f"{out} holds an unfinished run with other parameters ({', '.join(diff)}: "
                f"{[old.get(k) for k in diff]} there, {[params[k] for k in diff]} now); "
                "pass overwrite=True (--overwrite) to start again"
            )
        else:
            return True, zarr.open_group(str(out), mode="r+")
    group = zarr.open_group(str(out), mode="w")
    shape, block, n_thr = params["shape"], params["block"], len(params["thresholds"])
    if params["input"] == "raw":
        group.create_array("affinities", shape=(3, *shape), chunks=(3, *block), dtype="float32")
    for name in ("fragments_local", "fragments"):
        group.create_array(name, shape=shape, chunks=block, dtype="uint64")
    group.create_array("segmentation", shape=(n_thr, *shape), chunks=(1, *block), dtype="uint64")
    group.attrs["blockwise"] = {**params, "complete": False}
    return False, group


def predict_blockwise(model, source, out, *, block, client, threads=1, progress=True, hook=None):
    """Stage 1 alone: the affinities of raw zarr ``source`` into ``out/affinities``.

    ``out`` must be a group prepared by :func:`segment_blockwise` (which calls this).
    Returns the number of blocks computed (recorded ones are skipped).
    """
    raw, _ = open_input(source)
    grid = BlockGrid(tuple(raw.shape), tuple(block))
    in_shape = model.valid_input_shape(grid.block)
    margin = model.crop_margin(in_shape)
    model = model.cpu().eval()
    done = _run_stage(
        client, "predict", predict_block, retries=2, progress=progress,
        out=str(out), source=str(source), model=model, grid=grid, in_shape=in_shape,
        margin=margin, threads=threads, hook=hook,
    )  # fmt: skip
    return int(sum(done))


def segment_blockwise(
    source,
    out,
    *,
    block=(64, 256, 256),
    thresholds=(0.5,),
    quantile: str = "median",
    bins: int | None = 256,
    model: torch.nn.Module | None = None,
    client=None,
    workers: int = 2,
    overwrite: bool = False,
    watershed: dict | None = None,
    retries: int = 2,
    threads: int = 1,
    progress: bool = True,
    hook=None,
) -> BlockwiseSegmentation:
    """Segment a zarr volume block by block on a Dask client (see the module docstring).

    Args:
        source: path of a zarr array: raw ``(Z, Y, X)`` (then ``model`` is required) or
            affinities ``(3, Z, Y, X)`` in [0, 1], floating point.
        out: path of the output zarr group (its directory must exist).
        block: block shape ``(z, y, x)``; with a model, at least the network's context and a
            multiple of its down-sampling.
        thresholds: agglomeration score thresholds; one segmentation per sorted threshold.
        quantile: boundary statistic, a key of :data:`~neuroinverse.segmentation.QUANTILES`.
        bins: affinity levels of the per-pair histograms (:func:`~neuroinverse.segmentation.
            quantise`); ``None`` keeps exact quantiles (the table then grows with the
            boundary area).
        model: a valid-convolution 3-D :class:`~neuroinverse.models.UNet` with 3 outputs.
        client: a ``distributed.Client``; default: a ``LocalCluster`` of ``workers``
            single-threaded worker processes, closed at the end.
        workers: workers of the default cluster.
        overwrite: replace an output that is finished or was made with other parameters.
        watershed: keyword arguments of :func:`~neuroinverse.segmentation.watershed_fragments`.
        retries: times Dask retries a failed block task.
        threads: torch threads per prediction task (1 gives bitwise CPU reproducibility).
        progress: show a progress bar per stage.
        hook: ``hook(stage, block_index)`` called on the worker before a block is computed
            (tests use it to fail or kill a worker at a chosen block).

    Returns:
        The :class:`BlockwiseSegmentation`.
    """
    check_choice(quantile, "quantile", sorted(QUANTILES))
    bins = RegionGraph.check_bins(bins)
    thr = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(f"thresholds must be non-empty and finite; got {thresholds!r}")
    arr, kind = open_input(source)
    if kind == "raw" and model is None:
        raise ValueError(f"input {source} is a raw volume (Z, Y, X): a model is required")
    if kind == "affinities" and model is not None:
        raise ValueError(f"input {source} already holds affinities (3, Z, Y, X); drop the model")
    shape = tuple(int(s) for s in arr.shape[-3:])
    grid = BlockGrid(shape, _check_block(block, shape, model))
    out = Path(out).resolve()
    source = Path(source).resolve()
    params = dict(
        input=kind,
        source=str(source),
        shape=list(shape),
        block=list(grid.block),
        thresholds=thr.tolist(),
        quantile=quantile,
        bins=bins,
        watershed=dict(watershed or {}),
    )
    _, group = _prepare_output(out, params, overwrite)
    own = client is None
    if own:
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=workers, threads_per_worker=1))
    result = BlockwiseSegmentation(out, thr, np.zeros((0, 0), np.int64), 0, grid.n_blocks)
    try:
        t0 = time.perf_counter()
        aff_path = out / "affinities" if kind == "raw" else source
        if kind == "raw":
            result.computed["predict"] = predict_blockwise(
                model, source, out, block=grid.block, client=client, threads=threads,
                progress=progress, hook=hook,
            )  # fmt: skip
            result.seconds["predict"] = time.perf_counter() - t0
        common = dict(out=str(out), affinities=str(aff_path), grid=grid, hook=hook)
        t0 = time.perf_counter()
        counts = _run_stage(
            client, "fragments", fragment_block, retries=retries, progress=progress,
            watershed=params["watershed"], **common,
        )  # fmt: skip
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        computed = _run_stage(
            client, "edges", edges_block, retries=retries, progress=progress,
            offsets=offsets, bins=bins, **common,
        )  # fmt: skip
        result.computed["fragments"] = int(sum(computed))
        result.seconds["fragments"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = int(np.sum(counts))
        if block_done(out, "agglomerate", 0):
            maps = np.asarray(group["fragment_map"][...]).astype(np.int64)
        else:
            graph = assemble_region_graph(_load_edges(out, grid), n, bins=bins)
            result.graph = dict(
                pairs=len(graph.pairs), entries=int(graph.values.size),
                edges=int(graph.counts.sum()), bytes=graph.nbytes,
            )  # fmt: skip
            _, maps, _ = agglomerate_graph(graph, thresholds=thr, quantile=quantile)
            fmap = group.create_array(
                "fragment_map", shape=maps.shape, dtype="uint64", overwrite=True,
                chunks=(maps.shape[0], max(1, min(maps.shape[1], 1 << 18))),
            )  # fmt: skip
            fmap[...] = maps.astype(np.uint64)
            mark_block(out, "agglomerate", 0, result.graph)
        result.seconds["agglomerate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        computed = _run_stage(
            client, "relabel", relabel_block, retries=retries, progress=progress,
            out=str(out), grid=grid, offsets=offsets, counts=np.asarray(counts, np.int64),
            hook=hook,
        )  # fmt: skip
        result.computed["relabel"] = int(sum(computed))
        result.seconds["relabel"] = time.perf_counter() - t0
        group.attrs["blockwise"] = {**params, "complete": True}
        result.maps, result.n_fragments = maps, n
    finally:
        if own:
            cluster = client.cluster
            client.close()
            cluster.close()
    return result


def _load_edges(out: Path, grid: BlockGrid):
    for i in range(grid.n_blocks):
        with np.load(out / WORK / "edges" / f"{i}.npz") as f:
            yield f["u"], f["v"], f["values"], f["counts"]


def summary(result: BlockwiseSegmentation) -> dict:
    """The run's record as plain JSON-able values (the maps left out)."""
    d = asdict(result)
    d.pop("maps")
    d["path"], d["thresholds"] = str(d["path"]), [float(t) for t in result.thresholds]
    return d
