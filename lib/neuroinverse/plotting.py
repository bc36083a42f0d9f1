"""One figure style and one save helper, used by every chapter.

``apply_style()`` sets the book's matplotlib defaults (sizes, colours, no top/right spines);
``figure()`` makes a figure in that style; ``save(fig, slug, name)`` writes a PNG under
``_build/figures/<slug>/`` and checks that every axes that shows data has labelled axes.

Inside a notebook, ``save`` also shows the saved PNG (150 dpi) and glues it under ``name``, so
that the chapter's Markdown places it as a numbered figure with a caption and alt text::

    ```{glue:figure} fig1_maximin_path
    :name: fig-malis-maximin
    :alt: What the figure shows, in words, for a reader who cannot see it.

    What to see in the figure.
    ```

The figure's code cell carries the tag ``remove-output`` so that the book shows the figure
once, where the directive is; a reader running the notebook sees it under the cell.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt

from .runtime import output_root

__all__ = ["COLORS", "apply_style", "figure", "save", "check_labels"]

#: Colour per role, the same in every chapter: the Okabe–Ito palette (Okabe & Ito, "Color
#: Universal Design", 2008), so that the roles stay apart for readers with red–green colour
#: vision deficiency (a unit test checks every pair under simulated deuteranopia).
COLORS = {
    "data": "#4d4d4d",
    "truth": "#000000",
    "method": "#D55E00",
    "baseline": "#0072B2",
    "baseline2": "#009E73",
    "reference": "#CC79A7",
}

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.constrained_layout.use": True,
    "image.cmap": "viridis",
}


def apply_style() -> None:
    """Set the book's matplotlib defaults (call once per chapter)."""
    mpl.rcParams.update(_STYLE)


def figure(
    nrows: int = 1, ncols: int = 1, *, width: float = 7.0, height: float | None = None, **kw
):
    """``plt.subplots`` in the book style; ``height`` defaults to 2.4 in per row."""
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1; got {nrows}, {ncols}")
    apply_style()
    return plt.subplots(nrows, ncols, figsize=(width, height or 2.4 * nrows), squeeze=False, **kw)


def check_labels(fig) -> None:
    """Raise ``ValueError`` if an axes with data lacks an x or y label (images excepted).

    An axes sharing its x (or y) axis with a labelled one counts as labelled on that axis.
    """
    for i, ax in enumerate(fig.axes):
        if not ax.has_data() or ax.images:
            continue
        xlab = any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax))
        ylab = any(a.get_ylabel() for a in ax.get_shared_y_axes().get_siblings(ax))
        if not xlab or not ylab:
            raise ValueError(f"axes {i} ({ax.get_title()!r}) needs both axis labels, with units")


class SavedFigure(type(Path())):
    """The path of a saved figure; shows nothing when it ends a notebook cell.

    A chapter's figure cell ends with ``plotting.save(...)``; without this, Jupyter would
    print the build machine's file path under every figure of the published book.
    """

    def _ipython_display_(self) -> None:
        return None


def save(fig, slug: str, name: str, directory: Path | str | None = None) -> SavedFigure:
    """Check labels, write ``<directory or _build/figures/slug>/<name>.png`` and close ``fig``.

    In a notebook the PNG is shown and glued as ``name`` (see the module docstring); the
    returned path shows nothing when it ends a cell.
    """
    check_labels(fig)
    out = Path(directory) if directory is not None else output_root() / "figures" / slug
    out.mkdir(parents=True, exist_ok=True)
    path = SavedFigure(out / f"{name}.png")
    fig.savefig(path)
    _glue_in_notebook(name, path)
    plt.close(fig)
    return path


def _glue_in_notebook(name: str, path: Path) -> None:
    """Show the PNG at ``path`` and glue it as ``name`` when running inside an IPython kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's dependencies
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    from IPython.display import Image
    from myst_nb import glue

    glue(name, Image(data=path.read_bytes(), format="png"), display=True)
