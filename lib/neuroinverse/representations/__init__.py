"""Representations: what a trained network represents, measured with the tools used on brains.

* :mod:`~neuroinverse.representations.digits`: The digits that scikit-learn ships, split once,
  with noisy or shuffled labels.
* :mod:`~neuroinverse.representations.networks`: Small digit classifiers (MLP, CNN) whose every
  layer can be recorded and whose units can be silenced; their training through the book's loop.
* :mod:`~neuroinverse.representations.dimension`: Intrinsic dimension: TwoNN, its block analysis,
  the PCA dimension and the participation ratio.
* :mod:`~neuroinverse.representations.manifolds`: Point clouds of known intrinsic dimension
  (Gaussian subspaces, the swiss roll, spheres).
* :mod:`~neuroinverse.representations.units`: Class selectivity of single units and single-unit
  and cumulative ablations.
* :mod:`~neuroinverse.representations.population`: A simulated recorded population driven by a
  network layer, with Poisson trial noise.
* :mod:`~neuroinverse.representations.similarity`: RSA with a noise ceiling, SVCCA, linear CKA and
  unit matching.

Chapters import from here (``from neuroinverse.representations import ...``).
"""

from .digits import (
    N_CLASSES,
    N_PIXELS,
    DigitsSplit,
    load_digits_split,
    noisy_labels,
    shuffled_labels,
)
from .dimension import (
    BlockAnalysis,
    TwoNNResult,
    as_points,
    block_analysis,
    dimension_profile,
    nearest_neighbour_distances,
    participation_ratio,
    pca_dimension,
    two_nn,
)
from .manifolds import gaussian_subspace, random_orthonormal, sphere, swiss_roll
from .networks import (
    LayeredNet,
    Masks,
    convnet,
    evaluate,
    layer_activations,
    mlp,
    train_classifier,
    unit_activations,
)
from .population import Population, simulate_population
from .similarity import (
    NoiseCeiling,
    SVCCAResult,
    compare_rdms,
    linear_cka,
    noise_ceiling,
    random_invertible_map,
    rdm,
    rsa_permutation_null,
    svcca,
    unit_match,
)
from .units import (
    Selectivity,
    SingleUnitAblation,
    ablation_order,
    class_selectivity,
    cumulative_ablation,
    single_unit_ablation,
)

__all__ = [
    "N_CLASSES",
    "N_PIXELS",
    "DigitsSplit",
    "load_digits_split",
    "noisy_labels",
    "shuffled_labels",
    "TwoNNResult",
    "BlockAnalysis",
    "as_points",
    "nearest_neighbour_distances",
    "two_nn",
    "dimension_profile",
    "block_analysis",
    "pca_dimension",
    "participation_ratio",
    "gaussian_subspace",
    "swiss_roll",
    "sphere",
    "random_orthonormal",
    "LayeredNet",
    "Masks",
    "mlp",
    "convnet",
    "train_classifier",
    "evaluate",
    "layer_activations",
    "unit_activations",
    "Population",
    "simulate_population",
    "rdm",
    "compare_rdms",
    "NoiseCeiling",
    "noise_ceiling",
    "rsa_permutation_null",
    "SVCCAResult",
    "svcca",
    "linear_cka",
    "unit_match",
    "random_invertible_map",
    "Selectivity",
    "class_selectivity",
    "ablation_order",
    "SingleUnitAblation",
    "single_unit_ablation",
    "cumulative_ablation",
]
