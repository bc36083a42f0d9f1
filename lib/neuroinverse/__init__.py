"""neuroinverse: models, simulators and checks behind an executable book of deep-learning
methods for computational neuroscience and microscopy.

Submodules: :mod:`runtime`, :mod:`training`, :mod:`results`, :mod:`plotting`,
:mod:`chapters`, :mod:`cli`, and the packages ``simulators``, ``models``, ``inference``,
``metrics``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
