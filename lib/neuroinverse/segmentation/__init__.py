"""Segmentation from affinity graphs: MALIS losses and training, agglomeration.

* :mod:`~neuroinverse.segmentation.agglomerate`: From affinities to segmentations: watershed
  fragments, region graph, quantile agglomeration.
* :mod:`~neuroinverse.segmentation.evaluation`: Scoring affinities: Rand error over thresholds,
  per-edge error, and the raw-threshold baseline.
* :mod:`~neuroinverse.segmentation.malis`: MALIS: maximin affinity learning, plain and constrained,
  in 2-D and 3-D.
* :mod:`~neuroinverse.segmentation.training`: Training and prediction of affinity networks with a
  per-edge loss, MALIS, or both.

Chapters import from here (``from neuroinverse.segmentation import ...``).
"""

from .agglomerate import (
    QUANTILES,
    Agglomeration,
    RegionGraph,
    agglomerate,
    boundary_map,
    predict_volume_affinities,
    region_graph,
    seeded_threshold_components,
    threshold_components,
    watershed_fragments,
)
from .evaluation import (
    edge_error,
    rand_error_curve,
    raw_threshold_rand_errors,
)
from .malis import (
    count_checks,
    malis_counts,
    malis_counts_bruteforce,
    malis_loss,
    malis_weights,
    malis_work,
    malis_work_bruteforce,
    maximin_affinity,
    maximin_affinity_bruteforce,
    maximin_edges,
    maximin_path,
    maximum_spanning_tree,
    misclassified_pairs,
    per_edge_loss,
    weighted_pair_loss,
)
from .training import (
    branch_training,
    fit_affinity_net,
    malis_gradient_scale,
    predict_affinities,
)

__all__ = [
    "QUANTILES",
    "predict_volume_affinities",
    "RegionGraph",
    "Agglomeration",
    "boundary_map",
    "watershed_fragments",
    "seeded_threshold_components",
    "region_graph",
    "agglomerate",
    "threshold_components",
    "rand_error_curve",
    "edge_error",
    "raw_threshold_rand_errors",
    "maximum_spanning_tree",
    "maximin_edges",
    "maximin_affinity",
    "maximin_affinity_bruteforce",
    "malis_counts",
    "malis_counts_bruteforce",
    "malis_work",
    "malis_work_bruteforce",
    "malis_weights",
    "misclassified_pairs",
    "maximin_path",
    "count_checks",
    "weighted_pair_loss",
    "malis_loss",
    "per_edge_loss",
    "fit_affinity_net",
    "malis_gradient_scale",
    "branch_training",
    "predict_affinities",
]
