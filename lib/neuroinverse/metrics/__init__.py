"""Metrics: posterior quality, spike inference, localisation and segmentation scores.

* :mod:`~neuroinverse.metrics.connectivity`: Scores of connectivity estimates: correlation with the
  true coupling and detection AUC.
* :mod:`~neuroinverse.metrics.direction`: Direction selectivity of tuning curves: preferred
  direction, DSI and angular errors.
* :mod:`~neuroinverse.metrics.image`: Image-restoration metrics: PSNR and SSIM with the PSSR
  normalisation, Fourier ring correlation, and a SQUIRREL-style error map.
* :mod:`~neuroinverse.metrics.lds`: Scores of fitted linear dynamical systems: subspace angles,
  matched eigenvalues, covariance correlation.
* :mod:`~neuroinverse.metrics.localisation`: Localisation metrics of the SMLM challenge: matching,
  Jaccard index, RMSE, efficiency.
* :mod:`~neuroinverse.metrics.posterior`: Posterior quality metrics: KL divergence,
  highest-density-region mass, and C2ST.
* :mod:`~neuroinverse.metrics.segmentation`: Segmentation metrics for connectomics: Rand error, VOI
  split/merge, adapted Rand, CREMI score.
* :mod:`~neuroinverse.metrics.spike_samples`: Scores of posterior spike *samples*: dependencies
  between frames and calibrated counts.
* :mod:`~neuroinverse.metrics.spikes`: Spike-inference metrics: binned correlation, spike-count
  factor, SPIKE-synchronisation.

Chapters import from here (``from neuroinverse.metrics import ...``).
"""

from .connectivity import (
    connection_auc,
    connectivity_correlation,
    off_diagonal,
)
from .direction import (
    angular_error,
    direction_selectivity,
    polarity_agreement,
)
from .image import (
    SquirrelResult,
    frc,
    frc_cutoff,
    pssr_normalise,
    pssr_psnr,
    pssr_ssim,
    roughness,
    squirrel_error_map,
    temporal_flicker,
)
from .lds import (
    autocovariance_split,
    eigenvalue_error,
    match_eigenvalues,
    pearson_r,
    subspace_error,
    trial_mean_log_rates,
    variance_split,
)
from .localisation import (
    LocalisationScores,
    Matching,
    efficiency,
    isolated,
    localisation_scores,
    match_localisations,
    render_localisations,
    uncertainty_calibration,
)
from .posterior import (
    C2STCalibration,
    GridDensity,
    c2st,
    c2st_async,
    c2st_calibrated,
    c2st_calibrated_async,
    hpd_mass,
    kl_from_samples,
)
from .segmentation import (
    Contingency,
    SegmentationScores,
    adapted_rand_error,
    boundary_ignore_mask,
    contingency,
    cremi_score,
    mask_boundaries,
    rand_error,
    rand_pair_counts,
    score_sweep,
    segmentation_scores,
    variation_of_information,
)
from .spike_samples import (
    ambiguous_pairs,
    count_coverage,
    lag1_correlation,
)
from .spikes import (
    bin_frames,
    binned_correlation,
    frame_mask,
    misassigned_fraction,
    spike_count_factor,
    spike_sync,
)

__all__ = [
    "off_diagonal",
    "connectivity_correlation",
    "connection_auc",
    "direction_selectivity",
    "angular_error",
    "polarity_agreement",
    "pssr_normalise",
    "pssr_psnr",
    "pssr_ssim",
    "frc",
    "frc_cutoff",
    "SquirrelResult",
    "squirrel_error_map",
    "roughness",
    "temporal_flicker",
    "subspace_error",
    "eigenvalue_error",
    "match_eigenvalues",
    "pearson_r",
    "trial_mean_log_rates",
    "variance_split",
    "autocovariance_split",
    "Matching",
    "LocalisationScores",
    "match_localisations",
    "efficiency",
    "localisation_scores",
    "uncertainty_calibration",
    "isolated",
    "render_localisations",
    "GridDensity",
    "kl_from_samples",
    "hpd_mass",
    "c2st",
    "c2st_async",
    "c2st_calibrated",
    "c2st_calibrated_async",
    "C2STCalibration",
    "Contingency",
    "SegmentationScores",
    "contingency",
    "rand_pair_counts",
    "rand_error",
    "boundary_ignore_mask",
    "mask_boundaries",
    "variation_of_information",
    "adapted_rand_error",
    "cremi_score",
    "segmentation_scores",
    "score_sweep",
    "ambiguous_pairs",
    "lag1_correlation",
    "count_coverage",
    "bin_frames",
    "binned_correlation",
    "spike_count_factor",
    "frame_mask",
    "spike_sync",
    "misassigned_fraction",
]
