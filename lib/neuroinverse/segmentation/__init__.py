"""Segmentation from affinity graphs: MALIS losses and training, agglomeration.

* :mod:`~neuroinverse.segmentation.agglomerate`: From affinities to segmentations: watershed
  fragments, region graph, quantile agglomeration.
* :mod:`~neuroinverse.segmentation.blockwise`: Blockwise segmentation of volumes larger than memory,
  on Dask: predict, fragment, merge.
* :mod:`~neuroinverse.segmentation.blockwise_blocks`: One block's work in the blockwise path: the
  block grid, the input check, the four block tasks.
* :mod:`~neuroinverse.segmentation.blockwise_graph`: The region graph of a volume assembled from
  blocks: one histogram per fragment pair.
* :mod:`~neuroinverse.segmentation.evaluation`: Scoring affinities: Rand error over thresholds,
  per-edge error, and the raw-threshold baseline.
* :mod:`~neuroinverse.segmentation.kruskal`: Kruskal's algorithm with union-find on affinity graphs:
  the compiled kernels of MALIS.
* :mod:`~neuroinverse.segmentation.malis`: MALIS: maximin affinity learning, plain and constrained,
  in 2-D and 3-D.
* :mod:`~neuroinverse.segmentation.malis_loss`: The MALIS loss: weights from the pair counts, the
  per-pair losses, and the training losses.
* :mod:`~neuroinverse.segmentation.malis_reference`: Brute-force references for MALIS and the checks
  of the fast counts against them.
* :mod:`~neuroinverse.segmentation.membranes`: Cells from a 2-D membrane-probability map: connected
  interiors, grown over the membranes.
* :mod:`~neuroinverse.segmentation.training`: Training and prediction of affinity networks with a
  per-edge loss, MALIS, or both.

Chapters import from here (``from neuroinverse.segmentation import ...``).
"""

from .agglomerate import (
    QUANTILES,
    Agglomeration,
    RegionGraph,
    agglomerate,
    agglomerate_graph,
    boundary_map,
    pair_histograms,
    predict_volume_affinities,
    quantise,
    region_graph,
    seeded_threshold_components,
    threshold_components,
    watershed_fragments,
)
from .blockwise import (
    BlockwiseSegmentation,
    open_segmentation,
    predict_blockwise,
    segment_blockwise,
    summary,
    write_volume,
)
from .blockwise_blocks import (
    BlockGrid,
    block_done,
    block_record,
    edges_block,
    fragment_block,
    mark_block,
    open_input,
    predict_block,
    relabel_block,
    write_atomic,
)
from .blockwise_graph import (
    assemble_region_graph,
    block_edges,
)
from .evaluation import (
    edge_error,
    rand_error_curve,
    raw_threshold_rand_errors,
)
from .kruskal import (
    check_affinities_and_labels,
    compact_labels,
    edge_order,
    kruskal_label_counts,
    kruskal_size_counts,
    kruskal_tree,
    stable_argsort,
)
from .malis import (
    malis_counts,
    malis_work,
    maximin_affinity,
    maximin_edges,
    maximin_path,
    maximum_spanning_tree,
)
from .malis_loss import (
    MALISLoss,
    PerEdgeBCE,
    malis_loss,
    malis_weights,
    per_edge_loss,
    weighted_pair_loss,
)
from .malis_reference import (
    count_checks,
    malis_counts_bruteforce,
    malis_work_bruteforce,
    maximin_affinity_bruteforce,
    misclassified_pairs,
)
from .membranes import (
    segment_membrane_map,
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
    "quantise",
    "pair_histograms",
    "boundary_map",
    "watershed_fragments",
    "seeded_threshold_components",
    "region_graph",
    "agglomerate",
    "agglomerate_graph",
    "threshold_components",
    "BlockwiseSegmentation",
    "write_volume",
    "open_segmentation",
    "predict_blockwise",
    "segment_blockwise",
    "summary",
    "BlockGrid",
    "open_input",
    "block_record",
    "block_done",
    "mark_block",
    "write_atomic",
    "predict_block",
    "fragment_block",
    "edges_block",
    "relabel_block",
    "block_edges",
    "assemble_region_graph",
    "rand_error_curve",
    "edge_error",
    "raw_threshold_rand_errors",
    "kruskal_tree",
    "kruskal_size_counts",
    "kruskal_label_counts",
    "edge_order",
    "stable_argsort",
    "check_affinities_and_labels",
    "compact_labels",
    "maximum_spanning_tree",
    "maximin_edges",
    "maximin_affinity",
    "malis_counts",
    "malis_work",
    "maximin_path",
    "malis_weights",
    "weighted_pair_loss",
    "malis_loss",
    "per_edge_loss",
    "PerEdgeBCE",
    "MALISLoss",
    "maximin_affinity_bruteforce",
    "malis_counts_bruteforce",
    "malis_work_bruteforce",
    "misclassified_pairs",
    "count_checks",
    "segment_membrane_map",
    "fit_affinity_net",
    "malis_gradient_scale",
    "branch_training",
    "predict_affinities",
]
