"""The book's table of chapters: slug, part, title and notebook source.

This registry is the one place that lists the chapters; the CLI, the scorecard, the tests
and the benchmarks read it. ``_toc.yml`` must list the same notebooks (a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .runtime import repo_root

__all__ = ["Chapter", "CHAPTERS", "PARTS", "get_chapter", "chapter_slugs"]

#: The six parts of the book, in reading order.
PARTS: tuple[str, ...] = (
    "Neural activity from calcium imaging",
    "Population dynamics",
    "Simulation-based inference",
    "Computational microscopy",
    "Connectomics",
    "Representations",
)


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``source`` is the percent-format ``.py`` relative to the book root."""

    slug: str
    part: str
    title: str
    paper: str
    source: str

    @property
    def path(self) -> Path:
        return repo_root() / self.source

    @property
    def notebook(self) -> str:
        """The paired ``.ipynb`` relative to the book root."""
        return self.source[: -len(".py")] + ".ipynb"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        slug="deepspike",
        part=PARTS[0],
        title="Amortised spike inference with a VAE (DeepSpike)",
        paper="Speiser et al., NIPS 2017",
        source="chapters/calcium/deepspike.py",
    ),
    Chapter(
        slug="discrete-flows",
        part=PARTS[0],
        title="Parallel sampling of autoregressive spike posteriors (discrete flows)",
        paper="Aitchison, Adam & Turaga, 2018 (ICLR 2019 submission)",
        source="chapters/calcium/discrete-flows.py",
    ),
    Chapter(
        slug="stitching",
        part=PARTS[1],
        title="Stitching partial recordings by matching lagged covariances (S3ID)",
        paper="Nonnenmacher, Turaga & Macke, NIPS 2017",
        source="chapters/dynamics/stitching.py",
    ),
    Chapter(
        slug="nonstationary-plds",
        part=PARTS[1],
        title="Slow trial-to-trial drift in a Poisson LDS (N-PLDS)",
        paper="Park, Bohner & Macke, NIPS 2015",
        source="chapters/dynamics/nonstationary-plds.py",
    ),
    Chapter(
        slug="snpe-hh",
        part=PARTS[2],
        title="Sequential neural posterior estimation for a Hodgkin-Huxley neuron (SNPE-B)",
        paper="Lueckmann et al., NIPS 2017",
        source="chapters/sbi/snpe-hh.py",
    ),
    Chapter(
        slug="apt",
        part=PARTS[2],
        title="Automatic posterior transformation with atomic proposals (APT)",
        paper="Greenberg et al., ICML 2019",
        source="chapters/sbi/apt.py",
    ),
    Chapter(
        slug="emulators",
        part=PARTS[2],
        title="Likelihood-free inference with emulator networks",
        paper="Lueckmann et al., AABI 2018",
        source="chapters/sbi/emulators.py",
    ),
    Chapter(
        slug="decode",
        part=PARTS[3],
        title="Deep single-molecule localisation with temporal context (DECODE)",
        paper="Speiser et al., Nature Methods 2021",
        source="chapters/microscopy/decode.py",
    ),
    Chapter(
        slug="pssr",
        part=PARTS[3],
        title="Point-scanning super-resolution with crappified training pairs (PSSR)",
        paper="Fang et al., Nature Methods 2021",
        source="chapters/microscopy/pssr.py",
    ),
    Chapter(
        slug="active-sem",
        part=PARTS[3],
        title="Learning-guided SEM with active acquisition",
        paper="Mi et al., MICCAI 2020",
        source="chapters/microscopy/active-sem.py",
    ),
    Chapter(
        slug="fouriernet",
        part=PARTS[3],
        title="3D snapshot microscopy with Fourier networks and learned optics (FourierNet)",
        paper="Deb et al., NeurIPS 2022",
        source="chapters/microscopy/fouriernet.py",
    ),
    Chapter(
        slug="malis",
        part=PARTS[4],
        title="Maximin affinity learning of image segmentation (MALIS)",
        paper="Turaga et al., NIPS 2009",
        source="chapters/connectomics/malis.py",
    ),
    Chapter(
        slug="mala",
        part=PARTS[4],
        title="U-Net affinities, constrained MALIS and agglomeration (MALA)",
        paper="Funke et al., TPAMI 2019",
        source="chapters/connectomics/mala.py",
    ),
    Chapter(
        slug="fly-connectome",
        part=PARTS[4],
        title="A connectome-constrained network of fly motion vision",
        paper="Tschopp et al., arXiv 2018; Lappalainen et al., Nature 2024",
        source="chapters/connectomics/fly-connectome.py",
    ),
    Chapter(
        slug="intrinsic-dimension",
        part=PARTS[5],
        title="Intrinsic dimension of layer representations (TwoNN)",
        paper="Ansuini et al., NeurIPS 2019",
        source="chapters/representations/intrinsic-dimension.py",
    ),
    Chapter(
        slug="dnn-neuro-review",
        part=PARTS[5],
        title="Analysing artificial and simulated biological networks with the same toolkit",
        paper="Barrett, Morcos & Macke, Curr. Opin. Neurobiol. 2019",
        source="chapters/representations/dnn-neuro-review.py",
    ),
)


def chapter_slugs() -> list[str]:
    return [c.slug for c in CHAPTERS]


def get_chapter(slug: str) -> Chapter:
    """The chapter named ``slug``; an unknown slug raises ``ValueError`` listing the valid ones."""
    for c in CHAPTERS:
        if c.slug == slug:
            return c
    raise ValueError(f"unknown chapter {slug!r}; valid chapters: {', '.join(chapter_slugs())}")
