"""neuroinverse: models, simulators and checks behind an executable book of deep-learning
methods for computational neuroscience and microscopy.

The library by role, from the bottom up:

* the **base**: :mod:`~neuroinverse._checks` (argument checks) and :mod:`~neuroinverse.labels`
  (label images and their nearest-neighbour affinity graphs);
* the **core**: :mod:`~neuroinverse.runtime` (profiles, seeds, devices),
  :mod:`~neuroinverse.training` (the training loop), :mod:`~neuroinverse.results` (claims and
  verdicts), :mod:`~neuroinverse.plotting`, :mod:`~neuroinverse.data`, and the book's machinery
  (:mod:`~neuroinverse.chapters`, :mod:`~neuroinverse.book`, :mod:`~neuroinverse.cli`);
* the **domain** packages: ``simulators`` (data with their ground truth), ``models``
  (networks only), ``inference`` and ``segmentation`` (the methods: losses, targets, training
  and prediction beside each method), ``metrics`` (scores), and ``representations`` (small
  networks trained on digits and analysed with the tools used on brains).

Layer rules (enforced by ``tests/unit/test_layers.py``, which reads every import):
simulators import no models, inference, segmentation, training or metrics; models import no
training, metrics, simulators, inference or segmentation;
representations imports no simulators, models, inference, segmentation or metrics (it holds
its own networks, trained through the core's loop); the core imports no domain package;
no module imports another module's private (underscore) name except from ``_checks``.
Each domain package's ``__init__`` is its front door: chapters import from
``neuroinverse.<package>``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
