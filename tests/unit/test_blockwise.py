"""The blockwise path on a LocalCluster of two workers against the in-memory pipeline.

The reference is the in-memory agglomeration (``neuroinverse.segmentation.agglomerate``) run on
the blockwise run's own fragments and affinities: blockwise fragments stop at block faces, so
the whole-volume watershed's fragments are not the reference. Every threshold's segmentation
must be identical (ids included, so VOI 0), and no object may be split at a block face where the
in-memory run keeps it whole.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from neuroinverse.labels import affinities_from_labels  # noqa: E402
from neuroinverse.metrics import variation_of_information  # noqa: E402
from neuroinverse.models import UNet  # noqa: E402
from neuroinverse.segmentation import (  # noqa: E402  # noqa: E402
    BlockGrid,
    agglomerate,
    predict_volume_affinities,
    region_graph,
    segment_blockwise,
    write_volume,
)
from neuroinverse.simulators import simulate_neuropil  # noqa: E402

SHAPE = (32, 64, 64)
BLOCK = (16, 32, 32)  # 2 x 2 x 2 = 8 blocks
THRESHOLDS = (0.2, 0.4, 0.6, 0.8)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def volume():
    v = simulate_neuropil(shape=SHAPE, anisotropy=2, n_tubes=12, p_gap=0.3, n_somata=0, p_missing_section=0.0, seed=3)
    aff = affinities_from_labels(v.labels.astype(np.int64)).astype(np.float64)
    rng = np.random.default_rng(0)
    aff = np.clip(0.8 * aff + 0.1 + 0.15 * rng.standard_normal(aff.shape), 0, 1).astype(np.float32)
    return v.raw.astype(np.float32), aff


@pytest.fixture(scope="module")
def reference(tmp_path_factory, volume, client):
    """One uninterrupted blockwise run and the in-memory agglomeration of its fragments."""
    d = tmp_path_factory.mktemp("ref")
    write_volume(d / "aff.zarr", volume[1], chunks=(3, *BLOCK))
    run = segment_blockwise(d / "aff.zarr", d / "out.zarr", block=BLOCK, thresholds=THRESHOLDS, client=client)
    g = zarr.open_group(str(d / "out.zarr"), mode="r")
    frag = np.asarray(g["fragments"][...]).astype(np.int64)
    seg = np.asarray(g["segmentation"][...]).astype(np.int64)
    mem = agglomerate(volume[1], frag, thresholds=THRESHOLDS, quantile="median", bins=256)
    return run, frag, seg, mem


def _run(tmp_path, volume, client, **kw):
    src = tmp_path / "aff.zarr"
    if not src.exists():
        write_volume(src, volume[1], chunks=(3, *BLOCK))
    return segment_blockwise(src, tmp_path / "out.zarr", block=BLOCK, thresholds=THRESHOLDS, client=client, **kw)


def _settle(client, timeout=30.0):
    """Wait until no worker executes a task (a cancelled future does not stop its running task;
    the scheduler forgets it at once, the worker's own state does not)."""
    import time

    end = time.monotonic() + timeout
    while any(client.run(lambda dask_worker: dask_worker.state.executing_count).values()):
        if time.monotonic() > end:
            raise TimeoutError("tasks still running")
        time.sleep(0.05)


def _seg(run):
    return np.asarray(zarr.open_group(str(run.path), mode="r")["segmentation"][...]).astype(np.int64)


def test_grid_has_at_least_8_blocks():
    assert BlockGrid(SHAPE, BLOCK).n_blocks == 8


def test_equals_in_memory_agglomeration_at_every_threshold(reference):
    run, frag, seg, mem = reference
    assert run.n_fragments == frag.max() == np.unique(frag).size  # ids 1..F, globally unique
    np.testing.assert_array_equal(run.maps, mem.maps)
    n_seg = mem.n_segments()
    assert n_seg[0] > n_seg[-1] > 1  # the sweep goes from over- to under-segmentation
    grid = BlockGrid(SHAPE, BLOCK)
    crossing = 0
    for t in range(len(THRESHOLDS)):
        ref = mem.segmentation(t)
        np.testing.assert_array_equal(seg[t], ref)
        split, merge = variation_of_information(ref, seg[t], ignore_label=None)
        assert split + merge == 0.0
        # across every block face: two voxels share an object blockwise iff they do in memory
        for d in range(3):
            for p in range(1, grid.grid[d]):
                lo = [slice(None)] * 3
                hi = [slice(None)] * 3
                lo[d], hi[d] = p * BLOCK[d] - 1, p * BLOCK[d]
                same_bw = seg[t][tuple(lo)] == seg[t][tuple(hi)]
                np.testing.assert_array_equal(same_bw, ref[tuple(lo)] == ref[tuple(hi)])
                crossing += int(same_bw.sum())
    assert crossing > 0  # objects do cross block faces (fragments never do)


def test_table_is_one_bounded_histogram_per_pair(reference, volume):
    run, frag, _, _ = reference
    g = region_graph(frag, volume[1], bins=256)
    assert run.graph == dict(pairs=len(g.pairs), entries=g.values.size, edges=int(g.counts.sum()), bytes=g.nbytes)
    per_pair = np.diff(g.offsets)
    assert per_pair.max() <= 256 and run.graph["edges"] > run.graph["entries"]  # many edges share a level
    exact = region_graph(frag, volume[1])
    assert exact.counts.sum() == g.counts.sum() and exact.values.size > g.values.size


def test_exact_quantiles_without_bins(tmp_path, volume, client, reference):
    run = _run(tmp_path, volume, client, bins=None, progress=False)
    mem = agglomerate(volume[1], reference[1], thresholds=THRESHOLDS, quantile="median")
    np.testing.assert_array_equal(run.maps, mem.maps)
    np.testing.assert_array_equal(_seg(run), np.stack([mem.segmentation(t) for t in range(len(THRESHOLDS))]))


def test_prediction_is_bitwise_the_whole_volume_prediction(tmp_path, volume, client):
    torch.manual_seed(0)
    net = UNet(1, 3, dims=3, padding="valid", final_activation="sigmoid", base_channels=4, depth=2,
               downsample=(1, 2, 2), kernel_size=[(1, 3, 3), (3, 3, 3)]).eval()  # fmt: skip
    raw = volume[0][:, :48, :40]  # partial blocks on y and x
    write_volume(tmp_path / "raw.zarr", raw, chunks=BLOCK)
    run = segment_blockwise(tmp_path / "raw.zarr", tmp_path / "out.zarr", model=net, block=BLOCK,
                            thresholds=(0.5,), client=client, progress=False)  # fmt: skip
    pred = np.asarray(zarr.open_group(str(run.path), mode="r")["affinities"][...])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = predict_volume_affinities(net, raw)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(pred, whole)


@pytest.mark.parametrize("stage", ["edges", "relabel"])
def test_interrupted_run_restarts_to_the_same_result(tmp_path, volume, client, reference, stage):
    stop = tmp_path / "stop"
    stop.write_text("")

    def hook(s, i):
        if s == stage and i >= 4 and stop.exists():
            raise RuntimeError(f"interrupted at block {i}")

    with pytest.raises(RuntimeError, match="interrupted"):
        _run(tmp_path, volume, client, hook=hook, retries=0, progress=False)
    _settle(client)  # a block that was running when the run stopped may still finish
    recorded = len(list((tmp_path / "out.zarr" / ".blockwise" / stage).glob("*.json")))
    assert 0 < recorded < 8
    stop.unlink()
    run = _run(tmp_path, volume, client, hook=hook, progress=False)
    if stage == "edges":
        assert run.computed["fragments"] == 8 - recorded  # finished blocks were skipped
    else:  # the agglomeration was recorded: its map is read back, not recomputed
        assert run.computed == {"fragments": 0, "relabel": 8 - recorded} and run.graph == {}
    np.testing.assert_array_equal(run.maps, reference[0].maps)
    np.testing.assert_array_equal(_seg(run), reference[2])
    with pytest.raises(FileExistsError, match="overwrite"):
        _run(tmp_path, volume, client, progress=False)


def test_killed_worker_does_not_change_the_result(tmp_path, volume, client, reference):
    flag = tmp_path / "killed"

    def hook(stage, i):
        if stage == "fragments" and i == 3 and not flag.exists():
            flag.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-block

    run = _run(tmp_path, volume, client, hook=hook, progress=False)
    assert flag.exists()
    np.testing.assert_array_equal(run.maps, reference[0].maps)
    np.testing.assert_array_equal(_seg(run), reference[2])


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_give_clear_errors(tmp_path, volume):
    write_volume(tmp_path / "flat.zarr", volume[0][0], chunks=(32, 32))
    with pytest.raises(ValueError, match="shape"):
        segment_blockwise(tmp_path / "flat.zarr", tmp_path / "o.zarr", block=BLOCK)
    write_volume(tmp_path / "int.zarr", (volume[0] * 255).astype(np.uint8), chunks=BLOCK)
    with pytest.raises(ValueError, match="dtype"):
        segment_blockwise(tmp_path / "int.zarr", tmp_path / "o.zarr", block=BLOCK)
    write_volume(tmp_path / "raw.zarr", volume[0], chunks=BLOCK)
    with pytest.raises(ValueError, match="model is required"):
        segment_blockwise(tmp_path / "raw.zarr", tmp_path / "o.zarr", block=BLOCK)
    net = UNet(1, 3, dims=3, padding="valid", final_activation="sigmoid", base_channels=4, depth=2,
               downsample=(1, 2, 2), kernel_size=[(1, 3, 3), (3, 3, 3)])  # fmt: skip
    with pytest.raises(ValueError, match="context"):
        segment_blockwise(tmp_path / "raw.zarr", tmp_path / "o.zarr", model=net, block=(16, 8, 8))
    with pytest.raises(ValueError, match="bins"):
        segment_blockwise(tmp_path / "raw.zarr", tmp_path / "o.zarr", block=BLOCK, bins=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        segment_blockwise(tmp_path / "missing.zarr", tmp_path / "o.zarr", block=BLOCK)
    write_volume(tmp_path / "aff.zarr", volume[1], chunks=(3, *BLOCK))
    with pytest.raises(FileNotFoundError, match="directory"):
        segment_blockwise(tmp_path / "aff.zarr", tmp_path / "nowhere" / "o.zarr", block=BLOCK)
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileExistsError, match="not a zarr group"):
        segment_blockwise(tmp_path / "aff.zarr", tmp_path / "plain", block=BLOCK, overwrite=True)


def test_existing_output_of_another_shape_is_refused(tmp_path, volume, client, reference):
    run = reference[0]
    small = tmp_path / "small.zarr"
    write_volume(small, volume[1][:, :16], chunks=(3, *BLOCK))
    with pytest.raises(FileExistsError, match="finished segmentation"):
        segment_blockwise(small, run.path, block=BLOCK, thresholds=THRESHOLDS, client=client)
    before = _seg(run)
    np.testing.assert_array_equal(before, reference[2])  # untouched
    # an unfinished run with other parameters is refused too
    (Path(tmp_path) / "u").mkdir()
    write_volume(tmp_path / "u" / "aff.zarr", volume[1], chunks=(3, *BLOCK))

    def fail(stage, i):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        _run(tmp_path / "u", volume, client, hook=fail, retries=0, progress=False)
    with pytest.raises(FileExistsError, match="shape"):
        segment_blockwise(small, tmp_path / "u" / "out.zarr", block=BLOCK, thresholds=THRESHOLDS, client=client)


# ----------------------------------------------------------------------------- the command
def test_segment_command(tmp_path, volume, capsys):
    import json

    from neuroinverse.cli import main
    from neuroinverse.segmentation.blockwise_cli import segment_main

    write_volume(tmp_path / "aff.zarr", volume[1], chunks=(3, *BLOCK))
    args = [str(tmp_path / "aff.zarr"), str(tmp_path / "seg.zarr"), "--workers", "1", "--block", "16,32,32",
            "--thresholds", "0.2,0.4", "--no-progress"]  # fmt: skip
    assert segment_main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_blocks"] == 8 and report["thresholds"] == [0.2, 0.4]
    seg = np.asarray(zarr.open_group(str(tmp_path / "seg.zarr"), mode="r")["segmentation"][...]).astype(np.int64)
    frag = np.asarray(zarr.open_group(str(tmp_path / "seg.zarr"), mode="r")["fragments"][...]).astype(np.int64)
    mem = agglomerate(volume[1], frag, thresholds=(0.2, 0.4), bins=256)
    np.testing.assert_array_equal(seg, np.stack([mem.segmentation(t) for t in range(2)]))
    # a finished output is not overwritten without --overwrite; bad arguments exit with 2
    assert segment_main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        segment_main([*args[:4], "--block", "16,32"])
    assert stop.value.code == 2 and "three positive integers" in capsys.readouterr().err
    # the book's command forwards to the same code (a process of its own)
    assert main(["segment", str(tmp_path / "missing.zarr"), str(tmp_path / "o.zarr")]) == 2


def test_assembly_refuses_overlapping_block_tables(volume):
    from neuroinverse.segmentation import assemble_region_graph, block_edges

    frag = np.repeat(np.arange(1, 5), 4).reshape(1, 4, 4)  # four fragments: the rows of a 4 x 4 section
    aff = volume[1][:, :1, :4, :4]
    one = block_edges(frag, aff, {}, bins=256)
    g = assemble_region_graph([one], 4, bins=256)
    assert np.array_equal(g.values, region_graph(frag, aff, bins=256).values)
    with pytest.raises(ValueError, match="two blocks"):
        assemble_region_graph([one, one], 4, bins=256)  # the same pairs from two blocks
    flipped = (one[0], one[1], one[2][::-1].copy(), one[3])  # values out of order
    with pytest.raises(ValueError, match="not sorted"):
        assemble_region_graph([flipped], 4, bins=256)
    k = int(g.offsets[1])  # one block's pairs split in two tables at a pair boundary
    halves = [tuple(a[:k] for a in one), tuple(a[k:] for a in one)]
    assert np.array_equal(assemble_region_graph(halves[::-1], 4, bins=256).values, g.values)
