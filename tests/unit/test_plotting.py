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
