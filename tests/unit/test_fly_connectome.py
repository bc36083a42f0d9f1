"""Hex lattice, connectome compiler, network, direction metrics and motion training of the
fly-connectome chapter."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from neuroinverse.data import data_path, sha256
from neuroinverse.inference import MotionDecoder, edge_tuning, reichardt_tuning, train_motion_decoder
from neuroinverse.metrics import angular_error, direction_selectivity, polarity_agreement
from neuroinverse.models import ConnectomeNetwork
from neuroinverse.simulators import (
    T4_SUBCIRCUIT,
    T4_TYPES,
    HexLattice,
    collapse_filters,
    compile_connectome,
    fill_hull,
    full_field_flash,
    hex_columns,
    load_connectome,
    moving_edges,
    moving_textures,
    randomise_filters,
    rotate_axial,
    rotate_filters,
)

NAME = "fly-connectome/fib25-fib19_v2.2.json"


@pytest.fixture(scope="module")
def spec():
    return load_connectome(data_path(NAME))


def test_shipped_file_is_registered_and_has_65_types(spec):
    assert len(spec["nodes"]) == 65 and len(spec["edges"]) == 605


def test_tampered_file_is_refused(tmp_path):
    d = tmp_path / "data"
    (d / "fly-connectome").mkdir(parents=True)
    src = data_path(NAME)
    shutil.copy(src, d / NAME)
    (d / "registry").write_text(f"{sha256(src)}  {NAME}\n")
    assert data_path(NAME, d).is_file()
    with open(d / NAME, "a") as fh:
        fh.write(" ")
    with pytest.raises(ValueError, match="sha256"):
        data_path(NAME, d)


@pytest.mark.parametrize("extent, n", [(1, 7), (4, 61), (6, 127), (15, 721)])
def test_lattice_column_count(extent, n):
    lat = HexLattice(extent)
    assert lat.n_columns == n == hex_columns(extent)[0].size
    assert lat.u[lat.centre] == 0 and lat.v[lat.centre] == 0


def test_lattice_neighbours_are_sqrt3_apart_and_rotation_keeps_norm():
    lat = HexLattice(1)
    d = np.hypot(lat.x, lat.y)
    assert np.allclose(np.sort(d)[1:], np.sqrt(3))
    u, v = rotate_axial(lat.u, lat.v, 1)
    assert set(zip(u.tolist(), v.tolist(), strict=True)) == set(zip(lat.u.tolist(), lat.v.tolist(), strict=True))
    u6, v6 = rotate_axial(lat.u, lat.v, 6)
    assert np.array_equal(u6, lat.u) and np.array_equal(v6, lat.v)


def test_bad_extent_and_unknown_type(spec):
    with pytest.raises(ValueError, match="extent"):
        HexLattice(0)
    with pytest.raises(ValueError, match="extent"):
        compile_connectome(spec, extent=0)
    with pytest.raises(ValueError, match="unknown cell type"):
        compile_connectome(spec, extent=2, cell_types=["T4a", "T9z"])


def test_compiled_counts_match_the_paper(spec):
    g = compile_connectome(spec, extent=15)
    assert g.n_neurons == 45_669
    assert g.n_edges == 1_513_231


def test_subcircuit_counts_and_offset_convention(spec):
    g = compile_connectome(spec, extent=6, cell_types=T4_SUBCIRCUIT, n_syn_fill=0)
    assert g.n_neurons == 21 * 127 and len(g.pairs) == 123 and g.n_edges == 38_877
    # Mi9 -> T4a sits at offset (0, -1): the Mi9 cell at (0, 1) feeds the T4a cell at (0, 0)
    t4a, mi9 = g.neuron("T4a"), g.neuron("Mi9", 0, 1)
    assert np.any((g.edge_src == mi9) & (g.edge_tgt == t4a))
    assert not np.any((g.edge_src == g.neuron("Mi9", -2, 0)) & (g.edge_tgt == t4a))  # offset (2, 0): none


def test_fill_hull_adds_interior_points_only():
    tri = [[[0, 0], 5.0], [[2, 0], 5.0], [[0, 2], 5.0]]
    filled = fill_hull(tri, 1.0)
    added = {tuple(o[0]) for o in filled[3:]}
    assert (1, 0) in added or (1, 1) in added or (0, 1) in added
    assert all(o[1] == 1.0 for o in filled[3:])
    assert fill_hull(tri[:2], 1.0) == tri[:2]


def test_controls_keep_pairs_and_change_offsets(spec):
    col = collapse_filters(spec)
    rot = rotate_filters(spec, np.random.default_rng(0))
    rnd = randomise_filters(spec, np.random.default_rng(0))
    for s in (col, rot, rnd):
        assert [(e["src"], e["tar"]) for e in s["edges"]] == [(e["src"], e["tar"]) for e in spec["edges"]]
    into_t4 = [i for i, e in enumerate(spec["edges"]) if e["tar"] in T4_TYPES]
    assert all(col["edges"][i]["offsets"][0][0] == [0, 0] and len(col["edges"][i]["offsets"]) == 1 for i in into_t4)
    assert any(rot["edges"][i]["offsets"] != spec["edges"][i]["offsets"] for i in into_t4)
    assert all(
        len(a["offsets"]) == min(len(b["offsets"]), 19) for a, b in zip(rnd["edges"], spec["edges"], strict=True)
    )


def test_stimuli_shapes_and_ranges():
    lat = HexLattice(3)
    e = moving_edges(lat, angles_deg=[0, 90], speed=20.0, dt=0.01, t_pre=0.2, t_stim=0.5, background=0.0)
    assert e.shape == (2, 70, lat.n_columns)
    assert float(e[:, :20].max()) == 0.0 and float(e[:, -1].min()) > 0.9
    f = full_field_flash(lat, dt=0.01, t_pre=0.1, t_on=0.1, t_post=0.1)
    assert f.shape == (30, lat.n_columns) and float(f[15].min()) == 1.0
    s, v = moving_textures(
        lat, n=3, n_steps=5, dt=0.01, speed_range=(1.0, 2.0), generator=torch.Generator().manual_seed(0)
    )
    assert s.shape == (3, 5, lat.n_columns) and v.shape == (3, 2)
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    assert np.all((np.linalg.norm(v.numpy(), axis=1) >= 1.0) & (np.linalg.norm(v.numpy(), axis=1) <= 2.0))


def test_network_rejects_bad_stimulus_and_large_dt(spec):
    g = compile_connectome(spec, extent=2, cell_types=T4_SUBCIRCUIT)
    net = ConnectomeNetwork(g, tau_min=0.01)
    with pytest.raises(ValueError, match="stimulus must have shape"):
        net(torch.zeros(1, 5, 7), dt=0.01)
    with pytest.raises(ValueError, match="smallest time constant"):
        net(torch.zeros(1, 5, 19), dt=0.02)
    with pytest.raises(ValueError, match="below tau_min"):
        ConnectomeNetwork(g, tau=0.005, tau_min=0.01)


def test_network_steady_state_without_input_is_rest_plus_synapses(spec):
    g = compile_connectome(spec, extent=2, cell_types=["L1", "Mi1"])
    net = ConnectomeNetwork(g, v_rest_std=0.0, tau_min=0.01)
    v = net(torch.zeros(1, 400, 19), dt=0.01)[0, -1]
    w = net.weights().detach()
    syn = torch.zeros_like(v).index_add(0, net.edge_tgt, w * torch.relu(v)[net.edge_src])
    assert torch.allclose(v, 0.5 + syn, atol=1e-4)


def test_direction_metrics():
    angles = np.arange(0, 360, 30)
    r = np.maximum(np.cos(np.deg2rad(angles - 90)), 0)
    pd, dsi = direction_selectivity(r, angles)
    assert abs(pd - 90) < 1e-6 and dsi > 0.5
    assert direction_selectivity(np.ones(12), angles)[1] < 1e-12
    assert angular_error(350, 10) == 20
    assert polarity_agreement({"a": 0.3, "b": -0.1}, {"a": 1, "b": 1}) == 1


def test_reichardt_prefers_its_direction():
    lat = HexLattice(3)
    angles = np.arange(0, 360, 30)
    for pd_true in (0.0, 90.0, 180.0, 270.0):
        r = reichardt_tuning(lat, preferred_deg=pd_true, angles_deg=angles, speed=20.0, dt=0.005, t_pre=0.1, t_stim=0.4)
        pd, dsi = direction_selectivity(r, angles)
        assert angular_error(pd, pd_true) < 1 and dsi > 0.5


def test_untrained_connectome_t4_prefers_known_directions(spec):
    lat = HexLattice(4)
    g = compile_connectome(spec, extent=4, cell_types=T4_SUBCIRCUIT)
    net = ConnectomeNetwork(g, tau_min=0.005, v_rest_std=0.0)
    angles = np.arange(0, 360, 30)
    resp, _ = edge_tuning(
        net, g, lat, cell_types=T4_TYPES, angles_deg=angles, speed=20.0, dt=0.005, t_pre=0.5, t_stim=0.5
    )
    pd, _ = direction_selectivity(resp, angles)
    assert np.all(angular_error(pd, [180, 0, 90, 270]) < 30)


def test_motion_training_runs_through_fit(spec):
    lat = HexLattice(2)
    g = compile_connectome(spec, extent=2, cell_types=T4_SUBCIRCUIT)
    net = ConnectomeNetwork(g, tau_min=0.01)
    model = MotionDecoder(net, g, ["T4a", "T4b"])
    before = net.log_scale.detach().clone()
    h = train_motion_decoder(
        model, lat, n_steps=3, batch=2, n_frames=6, dt=0.01, lr=1e-2, speed_range=(5.0, 10.0), n_settle=3, seed=0,
        progress=False,
    )  # fmt: skip
    assert len(h.loss) == 3 and np.all(np.isfinite(h.loss))
    assert not torch.equal(before, net.log_scale.detach())
