import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuroinverse import plotting  # noqa: E402


def test_save_requires_axis_labels(tmp_path):
    fig, ax = plotting.figure()
    ax[0, 0].plot([0, 1], [0, 1])
    with pytest.raises(ValueError, match="axis labels"):
        plotting.save(fig, "t", "x", directory=tmp_path)
    ax[0, 0].set_xlabel("time (s)")
    ax[0, 0].set_ylabel("ΔF (a.u.)")
    path = plotting.save(fig, "t", "x", directory=tmp_path)
    assert path.exists() and path.stat().st_size > 1000


def test_shared_axis_label_counts():
    fig, ax = plotting.figure(2, 1, sharex=True)
    for a in ax[:, 0]:
        a.plot([0, 1], [0, 1])
        a.set_ylabel("y (a.u.)")
    ax[1, 0].set_xlabel("time (s)")
    plotting.check_labels(fig)


def test_saved_figure_path_is_a_path_that_notebooks_do_not_print(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    fig, ax = plotting.figure(1, 1)
    ax[0, 0].plot([0, 1], [0, 1])
    ax[0, 0].set_xlabel("x (a.u.)")
    ax[0, 0].set_ylabel("y (a.u.)")
    path = plotting.save(fig, "t", "shown", directory=tmp_path)
    assert path.exists() and path.name == "shown.png" and path.parent == tmp_path
    # IPython's display formatter asks the object to display itself and prints no repr
    fmt = InteractiveShell.instance().display_formatter
    assert fmt.format(path) == ({}, {})


def _deuteranope_lab(hex_colour: str):
    """CIELAB of a colour as seen with deuteranopia (Machado, Oliveira & Fernandes 2009, severity 1)."""
    import numpy as np

    rgb = np.array([int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    deut = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]])
    lin = np.clip(deut @ lin, 0, 1)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = to_xyz @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_role_colours_stay_apart_under_deuteranopia():
    """Every pair of role colours differs by ΔE ≥ 15 for a deuteranope (the old red/green pair: 7)."""
    import itertools

    import numpy as np

    from neuroinverse.plotting import COLORS

    close = [
        (a, b, round(float(np.linalg.norm(_deuteranope_lab(COLORS[a]) - _deuteranope_lab(COLORS[b]))), 1))
        for a, b in itertools.combinations(COLORS, 2)
    ]
    assert all(d >= 15 for _, _, d in close), [c for c in close if c[2] < 15]
    old_red, old_green = _deuteranope_lab("#d62728"), _deuteranope_lab("#2ca02c")
    assert np.linalg.norm(old_red - old_green) < 15  # the check does fail on a red/green pair


def test_figures_are_saved_at_150_dpi_or_more():
    import matplotlib as mpl

    from neuroinverse.plotting import apply_style

    apply_style()
    assert mpl.rcParams["savefig.dpi"] >= 150


def test_save_in_a_kernel_glues_the_saved_png_and_closes_the_figure(tmp_path, monkeypatch):
    """In a notebook the saved 150-dpi PNG is shown and glued under the figure's name (for the
    chapter's glue:figure directive); outside one nothing is glued."""
    import IPython
    import matplotlib.pyplot as plt
    import myst_nb

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, obj, display=True: glued.append((name, obj, display)))
    fig, ax = plotting.figure(1, 1, width=7, height=2)
    ax[0, 0].plot([0, 1], [0, 1])
    ax[0, 0].set_xlabel("x (a.u.)")
    ax[0, 0].set_ylabel("y (a.u.)")
    plotting.save(fig, "t", "outside", directory=tmp_path)
    assert glued == [] and not plt.fignum_exists(fig.number)

    class Kernel:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Kernel())
    fig, ax = plotting.figure(1, 1, width=7, height=2)
    ax[0, 0].plot([0, 1], [0, 1])
    ax[0, 0].set_xlabel("x (a.u.)")
    ax[0, 0].set_ylabel("y (a.u.)")
    path = plotting.save(fig, "t", "inside", directory=tmp_path)
    ((name, image, display),) = glued
    assert name == "inside" and display and image.data == path.read_bytes()
    assert image.data[16:20] == (1050).to_bytes(4, "big")  # 7 in at 150 dpi
    assert not plt.fignum_exists(fig.number)
