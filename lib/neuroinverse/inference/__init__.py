"""Inference methods and their classical baselines, each with its losses and training.

* :mod:`~neuroinverse.inference.abc`: Rejection approximate Bayesian computation (ABC), the
  classical SBI baseline.
* :mod:`~neuroinverse.inference.acquisition`: Acquisition for emulator networks: where to simulate
  next.
* :mod:`~neuroinverse.inference.active_learning`: Active learning with emulator networks: the loop,
  and posterior samples from the ensemble.
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
* :mod:`~neuroinverse.inference.plds`: Poisson linear dynamical system: the Laplace E-step, batched
  over trials, by block-tridiagonal Newton.
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
from .plds import (
    LaplacePosterior,
    block_tridiagonal_solve,
    check_counts,
    laplace_estep,
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
    "LaplacePosterior",
    "check_counts",
    "block_tridiagonal_solve",
    "laplace_estep",
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
