"""Simulators: each draws data with its true parameters or ground truth beside it.

* :mod:`~neuroinverse.simulators.autapse`: Autapse rate model: the simulator-failure example of
  Lueckmann et al., NIPS 2017, Fig. 4.
* :mod:`~neuroinverse.simulators.calcium`: Calcium-imaging simulators: spikes → calcium →
  fluorescence, with the true parameters.
* :mod:`~neuroinverse.simulators.coupled_calcium`: Coupled spiking cells imaged with calcium: a GLM
  spike prior with synaptic connectivity.
* :mod:`~neuroinverse.simulators.crappify`: PSSR "crappifiers": high-resolution images degraded into
  low-resolution training inputs (torch).
* :mod:`~neuroinverse.simulators.em`: Synthetic 2-D electron-microscopy "membrane images" with
  ground-truth segmentations.
* :mod:`~neuroinverse.simulators.em_tissue`: Synthetic high-resolution EM of neural tissue:
  membranes, mitochondria, vesicles, stain grain.
* :mod:`~neuroinverse.simulators.fly_connectome`: Compile the fly optic-lobe type-level connectome
  into a sparse neuron graph on a hex lattice.
* :mod:`~neuroinverse.simulators.hexlattice`: Hexagonal lattice of visual columns and stimuli drawn
  on it (moving edges, flashes, textures).
* :mod:`~neuroinverse.simulators.hh_features`: Summary features of Hodgkin-Huxley voltage traces:
  spikes, moments and electrophysiology.
* :mod:`~neuroinverse.simulators.hh_models`: Hodgkin-Huxley parameterisations: which parameters are
  inferred, their prior and θ*.
* :mod:`~neuroinverse.simulators.hh_simulator`: The Hodgkin-Huxley task as a callable: θ → summary
  features, with pilot z-scoring.
* :mod:`~neuroinverse.simulators.hodgkin_huxley`: Hodgkin-Huxley neuron with Pospischil et al.
  (2008) kinetics, batched over parameter sets.
* :mod:`~neuroinverse.simulators.lds`: Latent linear dynamical systems: Gaussian LDS with partial
  observation, Poisson LDS with slow drift.
* :mod:`~neuroinverse.simulators.neuropil`: Synthetic anisotropic 3-D neuropil: serial-section EM
  volumes of touching neurites with labels.
* :mod:`~neuroinverse.simulators.point_scan`: A point-scanning acquisition model (SEM, confocal):
  probe blur, pixel size, dwell, shot noise.
* :mod:`~neuroinverse.simulators.priors`: Priors for simulation-based inference.
* :mod:`~neuroinverse.simulators.smlm`: Single-molecule localisation microscopy (SMLM) simulator:
  blinking, PSF, camera.
* :mod:`~neuroinverse.simulators.smlm_emitters`: SMLM emitter tables: localisations or true
  emitters, one row per emitter and frame.
* :mod:`~neuroinverse.simulators.smlm_imaging`: SMLM image formation: the pixel-integrated Gaussian
  PSF, the camera, and the Mortensen precision.
* :mod:`~neuroinverse.simulators.snapshot`: 3-D snapshot imaging: sparse fluorescent volumes through
  a PSF stack onto one camera frame.
* :mod:`~neuroinverse.simulators.toy`: Toy simulators for simulation-based inference, each with its
  exact answer beside it.
* :mod:`~neuroinverse.simulators.tubules`: Synthetic fluorescence time-lapse of moving tubular
  objects (mitochondria-like), for multi-frame restoration.
* :mod:`~neuroinverse.simulators.wave_optics`: Scalar wave optics of a programmable-pupil
  microscope: phase masks, defocus and PSF stacks.

Chapters import from here (``from neuroinverse.simulators import ...``).
"""

from .autapse import (
    AUTAPSE_FEATURES,
    AUTAPSE_PRIOR,
    AUTAPSE_THETA_STAR,
    AutapseSimulator,
    AutapseTraces,
    autapse_summary,
    simulate_autapse,
)
from .calcium import (
    FRAME_RATE,
    M1_RANGES,
    M2_RANGES,
    CalciumData,
    SpineData,
    decay_time,
    sample_linear_params,
    sample_saturating_params,
    simulate_linear,
    simulate_saturating,
    simulate_spikes,
    simulate_spines,
)
from .coupled_calcium import (
    COUPLED_RANGES,
    CoupledCalciumData,
    coupled_log_prior,
    sample_coupled_params,
    sample_coupling,
    simulate_coupled,
)
from .crappify import (
    CRAPPIFIERS,
    crappify,
    frame_stack,
)
from .em import (
    EMImages,
    em_test_set,
    em_training_batch,
    gap_merge_mask,
    simulate_em_image,
    simulate_em_images,
)
from .em_tissue import (
    EMTissue,
    em_tissue,
    em_tissue_batch,
)
from .fly_connectome import (
    T4_SUBCIRCUIT,
    T4_TYPES,
    NeuronGraph,
    collapse_filters,
    compile_connectome,
    fill_hull,
    filter_of,
    load_connectome,
    randomise_filters,
    rotate_filters,
)
from .hexlattice import (
    HexLattice,
    check_stimulus,
    full_field_flash,
    hex_columns,
    moving_edges,
    moving_textures,
    rotate_axial,
)
from .hh_features import (
    FEATURE_SETS,
    feature_report,
    hh_summary,
    raw_trace_context,
    spike_times,
)
from .hh_models import (
    PHYSICAL_NAMES,
    HHModel,
    check_hh_theta,
    hh_model,
    resolve_hh_model,
)
from .hh_simulator import (
    HHSimulator,
    pilot_zscore,
)
from .hodgkin_huxley import (
    I_STEP,
    SOMA_AREA,
    HHTraces,
    hh_resting_potential,
    simulate_hh,
)
from .lds import (
    LDSData,
    LDSParams,
    PoissonLDSData,
    lagged_covariances_true,
    missing_at_random_mask,
    poisson_lds_inputs,
    random_lds,
    simulate_lds,
    simulate_poisson_lds,
    subpopulation_mask,
)
from .neuropil import (
    NEUROPIL_SIZES,
    NeuropilVolume,
    grow_boundary,
    membrane_mask,
    random_training_crop,
    simulate_neuropil,
    training_ground_truth,
)
from .point_scan import (
    downsample,
    downsample_torch,
    gaussian_blur,
    gaussian_blur_torch,
    point_scan,
    point_scan_torch,
    upsample,
    upsample_torch,
)
from .priors import (
    BoxUniform,
    GaussianPrior,
)
from .smlm import (
    SMLMBatch,
    SMLMSimulator,
    sample_blinking,
)
from .smlm_emitters import (
    EmitterTable,
    as_pixel_size,
)
from .smlm_imaging import (
    Camera,
    GaussianPSF,
    mortensen_precision,
    render_gaussian,
)
from .snapshot import (
    image_volume,
    otf_stack,
    shot_noise,
    sparse_volumes,
)
from .toy import (
    GAUSSIAN_1D_X_O,
    SLCP_THETA_O,
    TWO_MOONS_THETA_O,
    TWO_MOONS_X_O,
    gaussian_1d,
    gaussian_1d_log_likelihood,
    gaussian_1d_posterior_log_prob,
    gaussian_1d_prior,
    gaussian_linear,
    gaussian_linear_log_likelihood,
    gaussian_linear_posterior,
    gaussian_linear_prior,
    slcp,
    slcp_distractors,
    slcp_log_likelihood,
    slcp_prior,
    slcp_reference_posterior,
    two_moons,
    two_moons_grid_posterior,
    two_moons_log_likelihood,
    two_moons_prior,
    two_moons_reference_posterior,
)
from .tubules import (
    TubuleMovie,
    tubule_movie,
    tubule_movies,
)
from .wave_optics import (
    PupilMicroscope,
    airy_first_zero,
    flat_mask,
    r80,
    radial_profile_zero,
    ramps_mask,
    random_phase_mask,
)

__all__ = [
    "AUTAPSE_PRIOR",
    "AUTAPSE_THETA_STAR",
    "AUTAPSE_FEATURES",
    "AutapseTraces",
    "simulate_autapse",
    "autapse_summary",
    "AutapseSimulator",
    "FRAME_RATE",
    "M1_RANGES",
    "M2_RANGES",
    "CalciumData",
    "SpineData",
    "sample_linear_params",
    "sample_saturating_params",
    "simulate_spikes",
    "simulate_linear",
    "simulate_saturating",
    "simulate_spines",
    "decay_time",
    "COUPLED_RANGES",
    "CoupledCalciumData",
    "sample_coupling",
    "sample_coupled_params",
    "simulate_coupled",
    "coupled_log_prior",
    "CRAPPIFIERS",
    "crappify",
    "frame_stack",
    "EMImages",
    "simulate_em_image",
    "simulate_em_images",
    "em_test_set",
    "em_training_batch",
    "gap_merge_mask",
    "EMTissue",
    "em_tissue",
    "em_tissue_batch",
    "T4_SUBCIRCUIT",
    "T4_TYPES",
    "NeuronGraph",
    "load_connectome",
    "fill_hull",
    "compile_connectome",
    "collapse_filters",
    "rotate_filters",
    "randomise_filters",
    "filter_of",
    "HexLattice",
    "hex_columns",
    "rotate_axial",
    "moving_edges",
    "full_field_flash",
    "moving_textures",
    "check_stimulus",
    "FEATURE_SETS",
    "hh_summary",
    "raw_trace_context",
    "spike_times",
    "feature_report",
    "PHYSICAL_NAMES",
    "HHModel",
    "hh_model",
    "resolve_hh_model",
    "check_hh_theta",
    "HHSimulator",
    "pilot_zscore",
    "SOMA_AREA",
    "I_STEP",
    "HHTraces",
    "simulate_hh",
    "hh_resting_potential",
    "LDSParams",
    "LDSData",
    "random_lds",
    "simulate_lds",
    "lagged_covariances_true",
    "subpopulation_mask",
    "missing_at_random_mask",
    "PoissonLDSData",
    "poisson_lds_inputs",
    "simulate_poisson_lds",
    "NEUROPIL_SIZES",
    "NeuropilVolume",
    "simulate_neuropil",
    "membrane_mask",
    "grow_boundary",
    "training_ground_truth",
    "random_training_crop",
    "point_scan",
    "downsample",
    "upsample",
    "gaussian_blur",
    "point_scan_torch",
    "downsample_torch",
    "upsample_torch",
    "gaussian_blur_torch",
    "BoxUniform",
    "GaussianPrior",
    "SMLMBatch",
    "SMLMSimulator",
    "sample_blinking",
    "EmitterTable",
    "as_pixel_size",
    "GaussianPSF",
    "Camera",
    "render_gaussian",
    "mortensen_precision",
    "sparse_volumes",
    "image_volume",
    "shot_noise",
    "otf_stack",
    "TWO_MOONS_X_O",
    "TWO_MOONS_THETA_O",
    "two_moons_prior",
    "two_moons",
    "two_moons_log_likelihood",
    "two_moons_grid_posterior",
    "two_moons_reference_posterior",
    "gaussian_linear_prior",
    "gaussian_linear",
    "gaussian_linear_log_likelihood",
    "gaussian_linear_posterior",
    "GAUSSIAN_1D_X_O",
    "gaussian_1d_prior",
    "gaussian_1d",
    "gaussian_1d_log_likelihood",
    "gaussian_1d_posterior_log_prob",
    "SLCP_THETA_O",
    "slcp_prior",
    "slcp",
    "slcp_distractors",
    "slcp_log_likelihood",
    "slcp_reference_posterior",
    "TubuleMovie",
    "tubule_movie",
    "tubule_movies",
    "PupilMicroscope",
    "flat_mask",
    "ramps_mask",
    "random_phase_mask",
    "radial_profile_zero",
    "r80",
    "airy_first_zero",
]
