"""Inference methods and their classical baselines, each with its losses and training.

* :mod:`~neuroinverse.inference.abc`: Rejection approximate Bayesian computation (ABC), the
  classical SBI baseline.
* :mod:`~neuroinverse.inference.acquisition`: Acquisition for emulator networks: where to simulate
  next.
* :mod:`~neuroinverse.inference.active_learning`: Active learning with emulator networks: the loop,
  and posterior samples from the ensemble.
* :mod:`~neuroinverse.inference.active_sem`: Learning-guided SEM: error targets, fusion, time
  accounting and the speed-up at equal quality.
* :mod:`~neuroinverse.inference.active_sem_training`: Training and running the two networks of
  learning-guided SEM: membrane detector D and error predictor E.
* :mod:`~neuroinverse.inference.calcium_models`: The generative calcium models of DeepSpike: p_θ(f |
  s), linear, saturating and with spines.
* :mod:`~neuroinverse.inference.connectivity`: Connectivity between imaged cells: a learnable
  coupled generative model and GLM baselines.
* :mod:`~neuroinverse.inference.decode`: DECODE, the method: the training targets and the loss.
* :mod:`~neuroinverse.inference.decode_localise`: DECODE at inference time: network output →
  localisations, and precision-recall evaluation.
* :mod:`~neuroinverse.inference.decode_training`: DECODE training: windows simulated on the fly or
  once up front, and the training loop.
* :mod:`~neuroinverse.inference.deconvolution`: Classical spike-inference baselines: OASIS
  deconvolution and a discrete-time Gibbs sampler.
* :mod:`~neuroinverse.inference.discrete_flows`: Parallel fixed-point sampling of autoregressive
  Bernoulli posteriors (discrete flows).
* :mod:`~neuroinverse.inference.emulators`: Likelihood-free inference with ensembles of emulator
  networks and active acquisition.
* :mod:`~neuroinverse.inference.flow_vae`: The autoregressive spike posterior of the discrete-flows
  paper inside the DeepSpike VAE.
* :mod:`~neuroinverse.inference.fly_motion`: Probing and training the connectome network of the fly
  motion pathway.
* :mod:`~neuroinverse.inference.fused_flows`: All members of an emulator ensemble in one batched
  pass: a speed-up with the same densities.
* :mod:`~neuroinverse.inference.npe`: Neural posterior estimation: single-round NPE, sequential APT
  (SNPE-C), SNPE-B and naive SNPE.
* :mod:`~neuroinverse.inference.npe_methods`: The sequential NPE methods as small objects: APT's
  atomic loss, naive SNPE, pooled SNPE-B.
* :mod:`~neuroinverse.inference.nplds`: The hierarchical part of the nonstationary PLDS: a
  Gaussian-process prior over trials on the per-trial latent offsets h_r, its Laplace posterior and
  its hyper-parameters.
* :mod:`~neuroinverse.inference.nsls`: Dynamics that drift across trials (NSLS): a Gaussian-process
  prior over trials on every entry of a per-trial dynamics matrix A^(r), its posterior from the
  E-step's moments, and the EM fit.
* :mod:`~neuroinverse.inference.plds`: Poisson linear dynamical system: the Laplace E-step, batched
  over trials, by block-tridiagonal Newton.
* :mod:`~neuroinverse.inference.plds_em`: Fitting Poisson linear dynamical systems to many trials:
  the M-steps, the (VB)EM loop and its variants, and held-out trial prediction.
* :mod:`~neuroinverse.inference.pssr`: Point-scanning super-resolution (PSSR): crappified training
  pairs, training and restoration.
* :mod:`~neuroinverse.inference.rescan_policies`: Rescan policies of learning-guided SEM: which
  pixels a second, slow pass revisits.
* :mod:`~neuroinverse.inference.smlm_fitting`: Classical SMLM fitting: local-maximum detection plus
  per-spot Gaussian maximum likelihood.
* :mod:`~neuroinverse.inference.snapshot_reconstruction`: Snapshot 3-D reconstruction: the high-pass
  NMSE loss, decoder and joint mask training, Wiener.
* :mod:`~neuroinverse.inference.snpe`: SNPE-B: importance-weighted sequential neural posterior
  estimation (delfi style).
* :mod:`~neuroinverse.inference.snpe_proposals`: SNPE-B's proposals: Student-t mixtures with a prior
  mix-in, and the failure classifier.
* :mod:`~neuroinverse.inference.spike_vae`: Amortised variational inference of spikes from calcium
  traces (DeepSpike).
* :mod:`~neuroinverse.inference.stitching`: S3ID: stitching partial recordings into one latent LDS
  by matching time-lagged covariances.
* :mod:`~neuroinverse.inference.stitching_cost`: The work of one S3ID gradient step: counted
  floating-point operations and peak tensor memory.
* :mod:`~neuroinverse.inference.supervised`: Supervised spike inference: the recognition CNN trained
  on true spikes (an upper bound).

Chapters import from here (``from neuroinverse.inference import ...``).
"""

from .abc import (
    ABCResult,
    rejection_abc,
    resample_with_jitter,
    sample_prior_checked,
    simulate_checked,
)
from .acquisition import (
    alpha_info_mc,
    alpha_info_moment_matched,
    generate_candidates,
    log_alpha_post,
    select_batch,
)
from .active_learning import (
    ACQUISITIONS,
    ActiveLearningResult,
    posterior_samples,
    run_active_learning,
)
from .active_sem import (
    SpeedUp,
    average_dwell,
    components_hit,
    dwell_scans,
    equal_quality_dwell,
    error_target,
    fuse_rescan,
    pixel_auroc,
    segment_error_target,
    segmentation_arand,
    segmentation_vi,
    slow_equivalent_speedup,
    speedup_at_equal_quality,
)
from .active_sem_training import (
    error_batches,
    fit_pixel_classifier,
    membrane_batches,
    predict_maps,
    random_crops,
    segment_and_score,
)
from .calcium_models import (
    LinearCalciumModel,
    SaturatingCalciumModel,
    SpineCalciumModel,
    ar1_calcium,
    bernoulli_log_prob,
    gaussian_log_likelihood,
)
from .connectivity import (
    CoupledCalciumModel,
    glm_connectivity,
    threshold_deconvolved,
    two_stage_connectivity,
)
from .decode import (
    DecodeTargets,
    decode_loss,
    make_targets,
)
from .decode_localise import (
    localise,
    mixture_sigma,
    post_process,
    precision_recall_sweep,
    predict,
    window_batch,
)
from .decode_training import (
    TrainingWindows,
    simulate_windows,
    train_decode,
)
from .deconvolution import (
    gibbs_spikes,
    oasis_deconvolve,
)
from .discrete_flows import (
    FixedPointSample,
    ar_log_prob,
    ar_logits,
    causal_drive,
    causal_kernel,
    example_ar_posterior,
    fixed_point_sample,
    fresh_noise_iteration,
    prefix_agreement,
    relaxed_fixed_point,
    relaxed_sequential,
    sequential_sample,
)
from .emulators import (
    EmulatorEnsemble,
    FitLog,
    make_flow_ensemble,
)
from .flow_vae import (
    FlowSpikePosterior,
    RelaxedFlowVAE,
    linear_model_init,
    spike_elbo,
)
from .fly_motion import (
    MotionDecoder,
    edge_tuning,
    flash_polarity,
    reichardt_tuning,
    train_motion_decoder,
)
from .fused_flows import (
    FUSABLE_ACTIVATIONS,
    BatchedLinear,
    ForeachAdam,
    FusedFlows,
)
from .npe import (
    NPEResult,
    RestrictedPosterior,
    RoundRecord,
    run_npe,
)
from .npe_methods import (
    APT,
    METHODS,
    NaiveSNPE,
    NPEMethod,
    PooledSNPEB,
    RoundData,
    apt_atomic_loss,
    log_mixture_proposal,
    npe_method,
    sample_atom_indices,
)
from .nplds import (
    GP_JITTER,
    LOG_SIGMA2_GRID,
    LOG_TAU2_GRID,
    NO_COUPLING_LOG_TAU2,
    HyperSelection,
    TimescaleInit,
    gp_kl,
    laplace_h,
    predict_h,
    refit_offsets,
    select_hyperparameters,
    timescale_from_trial_means,
    trial_kernel,
    update_h_and_hyper,
)
from .nsls import (
    A_JITTER,
    LOG_SIGMA2_A_GRID,
    NSLSFit,
    dynamics_statistics,
    fit_nsls,
    gp_dynamics_posterior,
    slow_coefficients,
    update_dynamics_gp,
)
from .plds import (
    LaplacePosterior,
    block_tridiagonal_covariances,
    block_tridiagonal_solve,
    check_counts,
    laplace_estep,
    prior_mean_trajectory,
)
from .plds_em import (
    ARD_GRID,
    MODELS,
    PLDSFit,
    PLDSParams,
    check_plds_data,
    fit_plds,
    heldout_error,
    offset_statistics,
    poisson_glm_trial_means,
    simulate_trial_means,
    update_dynamics,
    update_loadings,
)
from .pssr import (
    pssr_batch,
    restore,
    restore_movie,
    stack_movie,
    train_pssr,
)
from .rescan_policies import (
    POLICIES,
    greedy_kdpp,
    grid_rescan,
    random_rescan,
    rescan_budget,
    rescan_masks,
    topk_rescan,
    wdpp_rescan,
    window_budgets,
)
from .smlm_fitting import (
    GaussianFit,
    calibrate_psf,
    detect_spots,
    extract_rois,
    fit_frames,
    fit_gaussian_mle,
    gaussian_crlb,
)
from .snapshot_reconstruction import (
    SnapshotTraining,
    high_pass,
    nmse,
    pearson,
    reconstruct,
    snapshot_loss,
    train_snapshot_decoder,
    wiener_deconvolution,
)
from .snpe import (
    SNPEB,
    SNPEBRound,
    calibration_kernel,
    effective_sample_size,
    importance_weights,
    marginal_summary,
    self_normalized_weights,
    weighted_and_unweighted,
)
from .snpe_proposals import (
    FailureClassifier,
    SNPEProposal,
    StudentTMixture,
    snpe_a_correction,
)
from .spike_vae import (
    SpikeVAE,
    fit_spike_vae,
    make_snippets,
    train_spike_vae,
    vimco_objective,
)
from .stitching import (
    S3ID,
    S3IDFit,
    check_masked_data,
    dense_loss,
    empirical_lagged_covariances,
    fit_s3id,
    stochastic_loss,
)
from .stitching_cost import (
    PeakTensorMemory,
    step_work,
    time_step,
)
from .supervised import (
    train_supervised_spikes,
)

__all__ = [
    "ABCResult",
    "rejection_abc",
    "resample_with_jitter",
    "sample_prior_checked",
    "simulate_checked",
    "log_alpha_post",
    "alpha_info_moment_matched",
    "alpha_info_mc",
    "generate_candidates",
    "select_batch",
    "ACQUISITIONS",
    "posterior_samples",
    "ActiveLearningResult",
    "run_active_learning",
    "error_target",
    "segment_error_target",
    "fuse_rescan",
    "average_dwell",
    "SpeedUp",
    "equal_quality_dwell",
    "speedup_at_equal_quality",
    "slow_equivalent_speedup",
    "segmentation_vi",
    "segmentation_arand",
    "pixel_auroc",
    "components_hit",
    "dwell_scans",
    "random_crops",
    "membrane_batches",
    "error_batches",
    "fit_pixel_classifier",
    "predict_maps",
    "segment_and_score",
    "bernoulli_log_prob",
    "ar1_calcium",
    "gaussian_log_likelihood",
    "LinearCalciumModel",
    "SaturatingCalciumModel",
    "SpineCalciumModel",
    "CoupledCalciumModel",
    "glm_connectivity",
    "threshold_deconvolved",
    "two_stage_connectivity",
    "DecodeTargets",
    "make_targets",
    "decode_loss",
    "mixture_sigma",
    "post_process",
    "window_batch",
    "predict",
    "localise",
    "precision_recall_sweep",
    "TrainingWindows",
    "simulate_windows",
    "train_decode",
    "oasis_deconvolve",
    "gibbs_spikes",
    "FixedPointSample",
    "causal_kernel",
    "causal_drive",
    "ar_logits",
    "ar_log_prob",
    "fixed_point_sample",
    "fresh_noise_iteration",
    "sequential_sample",
    "prefix_agreement",
    "relaxed_fixed_point",
    "relaxed_sequential",
    "example_ar_posterior",
    "EmulatorEnsemble",
    "FitLog",
    "make_flow_ensemble",
    "FlowSpikePosterior",
    "RelaxedFlowVAE",
    "spike_elbo",
    "linear_model_init",
    "edge_tuning",
    "flash_polarity",
    "reichardt_tuning",
    "MotionDecoder",
    "train_motion_decoder",
    "FUSABLE_ACTIVATIONS",
    "BatchedLinear",
    "ForeachAdam",
    "FusedFlows",
    "RestrictedPosterior",
    "RoundRecord",
    "NPEResult",
    "run_npe",
    "METHODS",
    "NPEMethod",
    "APT",
    "NaiveSNPE",
    "PooledSNPEB",
    "npe_method",
    "RoundData",
    "sample_atom_indices",
    "apt_atomic_loss",
    "log_mixture_proposal",
    "refit_offsets",
    "GP_JITTER",
    "LOG_SIGMA2_GRID",
    "LOG_TAU2_GRID",
    "NO_COUPLING_LOG_TAU2",
    "trial_kernel",
    "laplace_h",
    "HyperSelection",
    "gp_kl",
    "select_hyperparameters",
    "predict_h",
    "update_h_and_hyper",
    "TimescaleInit",
    "timescale_from_trial_means",
    "A_JITTER",
    "LOG_SIGMA2_A_GRID",
    "dynamics_statistics",
    "gp_dynamics_posterior",
    "update_dynamics_gp",
    "NSLSFit",
    "fit_nsls",
    "slow_coefficients",
    "LaplacePosterior",
    "check_counts",
    "block_tridiagonal_solve",
    "block_tridiagonal_covariances",
    "prior_mean_trajectory",
    "laplace_estep",
    "MODELS",
    "ARD_GRID",
    "PLDSParams",
    "PLDSFit",
    "check_plds_data",
    "update_dynamics",
    "update_loadings",
    "offset_statistics",
    "fit_plds",
    "simulate_trial_means",
    "heldout_error",
    "poisson_glm_trial_means",
    "pssr_batch",
    "train_pssr",
    "restore",
    "restore_movie",
    "stack_movie",
    "rescan_budget",
    "random_rescan",
    "grid_rescan",
    "topk_rescan",
    "greedy_kdpp",
    "window_budgets",
    "wdpp_rescan",
    "POLICIES",
    "rescan_masks",
    "detect_spots",
    "extract_rois",
    "fit_gaussian_mle",
    "GaussianFit",
    "fit_frames",
    "gaussian_crlb",
    "calibrate_psf",
    "high_pass",
    "snapshot_loss",
    "nmse",
    "pearson",
    "SnapshotTraining",
    "train_snapshot_decoder",
    "reconstruct",
    "wiener_deconvolution",
    "SNPEBRound",
    "SNPEB",
    "importance_weights",
    "self_normalized_weights",
    "effective_sample_size",
    "calibration_kernel",
    "marginal_summary",
    "weighted_and_unweighted",
    "StudentTMixture",
    "SNPEProposal",
    "FailureClassifier",
    "snpe_a_correction",
    "vimco_objective",
    "SpikeVAE",
    "make_snippets",
    "train_spike_vae",
    "fit_spike_vae",
    "S3ID",
    "S3IDFit",
    "empirical_lagged_covariances",
    "dense_loss",
    "stochastic_loss",
    "fit_s3id",
    "check_masked_data",
    "PeakTensorMemory",
    "step_work",
    "time_step",
    "train_supervised_spikes",
]
