"""One block's work in the blockwise path: the block grid, the input check, the four block tasks.

Each task of :mod:`neuroinverse.segmentation.blockwise` reads its block (and, for prediction, the
network's context; for the region graph, the last slice of the blocks below it) from zarr,
writes whole chunks, and then leaves a record under ``OUT.zarr/.blockwise/<stage>/<i>.json``
(written to a temporary name and renamed, so a record exists only for a finished block). A task
whose record exists returns at once; a task run twice writes the same bytes twice. That is
what makes a run restartable and a retried task harmless.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .agglomerate import watershed_fragments
from .blockwise_graph import block_edges
from .training import predict_affinities

__all__ = [
    "BlockGrid",
    "open_input",
    "block_record",
    "block_done",
    "mark_block",
    "write_atomic",
    "predict_block",
    "fragment_block",
    "edges_block",
    "relabel_block",
]

WORK = ".blockwise"


@dataclass(frozen=True)
class BlockGrid:
    """A volume of ``shape`` cut into blocks of ``block`` (the last per axis may be smaller).

    Blocks are numbered in C order of their grid position.
    """

    shape: tuple[int, int, int]
    block: tuple[int, int, int]

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(-(-s // b) for s, b in zip(self.shape, self.block, strict=True))

    @property
    def n_blocks(self) -> int:
        return int(np.prod(self.grid))

    def position(self, i: int) -> tuple[int, ...]:
        return tuple(int(p) for p in np.unravel_index(i, self.grid))

    def slices(self, i: int) -> tuple[slice, ...]:
        """The block's voxels as slices of the volume."""
        return tuple(
            slice(p * b, min((p + 1) * b, s))
            for p, b, s in zip(self.position(i), self.block, self.shape, strict=True)
        )

    def lower(self, i: int, axis: int) -> int | None:
        """The block before block ``i`` along ``axis``, or None at the volume's low face."""
        pos = list(self.position(i))
        if pos[axis] == 0:
            return None
        pos[axis] -= 1
        return int(np.ravel_multi_index(pos, self.grid))


def open_input(path):
    """The input zarr array: raw ``(Z, Y, X)`` or affinities ``(3, Z, Y, X)``, floating."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    try:
        arr = zarr.open_array(str(path), mode="r")
    except Exception as err:  # a group or not zarr at all
        raise ValueError(
            f"input {path} is not a zarr array ({type(err).__name__}: {err})"
        ) from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"input {path} has dtype {arr.dtype}; expected a floating-point raw volume or "
            "affinities in [0, 1] (convert integer EM data, e.g. uint8 / 255, first)"
        )
    if arr.ndim == 3:
        return arr, "raw"
    if arr.ndim == 4 and arr.shape[0] == 3:
        return arr, "affinities"
    raise ValueError(
        f"input {path} has shape {arr.shape}; expected raw (Z, Y, X) or affinities (3, Z, Y, X)"
    )


def block_record(out: Path, stage: str, i: int) -> Path:
    return out / WORK / stage / f"{i}.json"


def block_done(out: Path, stage: str, i: int) -> bool:
    return block_record(out, stage, i).exists()


def write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def mark_block(out: Path, stage: str, i: int, info: dict | None = None) -> None:
    write_atomic(block_record(out, stage, i), lambda p: p.write_text(json.dumps(info or {})))


# ----------------------------------------------------------------------------- block tasks
def _reflect_index(lo: int, hi: int, size: int) -> np.ndarray:
    """Indices ``lo..hi-1`` reflected at the volume's faces (numpy's "reflect", as in
    ``np.pad``); indices further out than one reflection are clipped (only voxels outside
    the volume, cropped from the output, see them)."""
    idx = np.arange(lo, hi)
    idx = np.where(idx < 0, -idx, idx)
    idx = np.where(idx > size - 1, 2 * (size - 1) - idx, idx)
    return np.clip(idx, 0, size - 1)


def predict_block(i, *, out, source, model, grid, in_shape, margin, threads, hook):
    out = Path(out)
    if block_done(out, "predict", i):
        return 0
    if hook is not None:
        hook("predict", i)
    import zarr

    torch.set_num_threads(threads)
    raw = zarr.open_array(str(source), mode="r")
    sl = grid.slices(i)
    idx = [
        _reflect_index(s.start - m, s.start - m + n, size)
        for s, m, n, size in zip(sl, margin, in_shape, grid.shape, strict=True)
    ]
    lo = [int(ix.min()) for ix in idx]
    region = np.asarray(
        raw[tuple(slice(a, int(ix.max()) + 1) for a, ix in zip(lo, idx, strict=True))]
    )
    inp = region[np.ix_(*[ix - a for ix, a in zip(idx, lo, strict=True)])].astype(np.float32)
    pred = predict_affinities(model, np.ascontiguousarray(inp)[None], device="cpu")[0]
    size = tuple(s.stop - s.start for s in sl)
    zarr.open_array(str(out / "affinities"), mode="r+")[(slice(None), *sl)] = pred[
        :, : size[0], : size[1], : size[2]
    ]
    mark_block(out, "predict", i)
    return 1


def fragment_block(i, *, out, affinities, grid, watershed, hook):
    out = Path(out)
    if block_done(out, "fragments", i):
        return json.loads(block_record(out, "fragments", i).read_text())["count"]
    if hook is not None:
        hook("fragments", i)
    import zarr

    sl = grid.slices(i)
    aff = np.asarray(zarr.open_array(str(affinities), mode="r")[(slice(None), *sl)])
    frag = watershed_fragments(aff, **watershed)
    ids, local = np.unique(frag, return_inverse=True)
    local = local.reshape(frag.shape).astype(np.uint64) + 1
    zarr.open_array(str(out / "fragments_local"), mode="r+")[sl] = local
    mark_block(out, "fragments", i, {"count": int(ids.size)})
    return int(ids.size)


def edges_block(i, *, out, affinities, grid, offsets, bins, hook):
    out = Path(out)
    if block_done(out, "edges", i):
        return 0
    if hook is not None:
        hook("edges", i)
    import zarr

    sl = grid.slices(i)
    local = zarr.open_array(str(out / "fragments_local"), mode="r")
    frag = np.asarray(local[sl]).astype(np.int64) + int(offsets[i])
    faces = {}
    for d in range(3):
        j = grid.lower(i, d)
        if j is not None:
            face = list(sl)
            face[d] = slice(sl[d].start - 1, sl[d].start)
            faces[d] = np.asarray(local[tuple(face)]).astype(np.int64) + int(offsets[j])
    aff = np.asarray(zarr.open_array(str(affinities), mode="r")[(slice(None), *sl)])
    u, v, val, cnt = block_edges(frag, aff, faces, bins=bins)
    zarr.open_array(str(out / "fragments"), mode="r+")[sl] = frag.astype(np.uint64)
    write_atomic(
        out / WORK / "edges" / f"{i}.npz",
        lambda p: np.savez(open(p, "wb"), u=u, v=v, values=val, counts=cnt),
    )
    mark_block(out, "edges", i, {"entries": int(u.size), "edges": int(cnt.sum())})
    return 1


def relabel_block(i, *, out, grid, offsets, counts, hook):
    """Segment ids of block ``i`` at every threshold; reads only the columns of
    ``fragment_map`` of the block's own fragments (ids ``offsets[i] + 1 ..
    offsets[i] + counts[i]``), so a worker never holds the whole map."""
    out = Path(out)
    if block_done(out, "relabel", i):
        return 0
    if hook is not None:
        hook("relabel", i)
    import zarr

    sl = grid.slices(i)
    lo = int(offsets[i]) + 1
    fmap = np.asarray(
        zarr.open_array(str(out / "fragment_map"), mode="r")[:, lo : lo + int(counts[i])]
    )
    frag = np.asarray(zarr.open_array(str(out / "fragments"), mode="r")[sl]).astype(np.int64)
    zarr.open_array(str(out / "segmentation"), mode="r+")[(slice(None), *sl)] = fmap[:, frag - lo]
    mark_block(out, "relabel", i)
    return 1
