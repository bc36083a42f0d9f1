"""Inference methods and their classical baselines, each with its losses and training.

* :mod:`~neuroinverse.inference.abc`: Rejection approximate Bayesian computation (ABC), the
  classical SBI baseline.
* :mod:`~neuroinverse.inference.acquisition`: Acquisition for emulator networks: where to simulate
  next.
* :mod:`~neuroinverse.inference.active_learning`: Active learning with emulator networks: the loop,
  and posterior samples from the ensemble.
* :mod:`~neuroinverse.inference.decode`: DECODE, the method: targets, loss, post-processing,
  training and evaluation.
* :mod:`~neuroinverse.inference.deconvolution`: Classical spike-inference baselines: OASIS
  deconvolution and a discrete-time Gibbs sampler.
* :mod:`~neuroinverse.inference.emulators`: Likelihood-free inference with ensembles of emulator
  networks and active acquisition.
* :mod:`~neuroinverse.inference.fused_flows`: All members of an emulator ensemble in one batched
  pass: a speed-up with the same densities.
* :mod:`~neuroinverse.inference.npe`: Neural posterior estimation: single-round NPE, sequential APT
  (SNPE-C), SNPE-B and naive SNPE.
* :mod:`~neuroinverse.inference.smlm_fitting`: Classical SMLM fitting: local-maximum detection plus
  per-spot Gaussian maximum likelihood.
* :mod:`~neuroinverse.inference.snpe`: SNPE-B: importance-weighted sequential neural posterior
  estimation (delfi style).
* :mod:`~neuroinverse.inference.spike_vae`: Amortised variational inference of spikes from calcium
  traces (DeepSpike).
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
from .decode import (
    DecodeTargets,
    TrainingWindows,
    decode_loss,
    localise,
    make_targets,
    mixture_sigma,
    post_process,
    precision_recall_sweep,
    predict,
    simulate_windows,
    train_decode,
    window_batch,
)
from .deconvolution import (
    gibbs_spikes,
    oasis_deconvolve,
)
from .emulators import (
    EmulatorEnsemble,
    FitLog,
    make_flow_ensemble,
)
from .fused_flows import (
    FUSABLE_ACTIVATIONS,
    BatchedLinear,
    ForeachAdam,
    FusedFlows,
)
from .npe import (
    METHODS,
    NPEResult,
    RestrictedPosterior,
    RoundRecord,
    apt_atomic_loss,
    run_npe,
    sample_atom_indices,
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
from .snpe import (
    SNPEB,
    FailureClassifier,
    SNPEBRound,
    SNPEProposal,
    StudentTMixture,
    calibration_kernel,
    effective_sample_size,
    importance_weights,
    marginal_summary,
    snpe_a_correction,
    weighted_and_unweighted,
)
from .spike_vae import (
    LinearCalciumModel,
    SaturatingCalciumModel,
    SpikeVAE,
    SpineCalciumModel,
    ar1_calcium,
    bernoulli_log_prob,
    fit_spike_vae,
    gaussian_log_likelihood,
    make_snippets,
    train_spike_vae,
    vimco_objective,
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
    "DecodeTargets",
    "make_targets",
    "decode_loss",
    "post_process",
    "mixture_sigma",
    "predict",
    "localise",
    "train_decode",
    "simulate_windows",
    "TrainingWindows",
    "window_batch",
    "precision_recall_sweep",
    "oasis_deconvolve",
    "gibbs_spikes",
    "EmulatorEnsemble",
    "FitLog",
    "make_flow_ensemble",
    "FUSABLE_ACTIVATIONS",
    "BatchedLinear",
    "ForeachAdam",
    "FusedFlows",
    "METHODS",
    "sample_atom_indices",
    "apt_atomic_loss",
    "RestrictedPosterior",
    "RoundRecord",
    "NPEResult",
    "run_npe",
    "detect_spots",
    "extract_rois",
    "fit_gaussian_mle",
    "GaussianFit",
    "fit_frames",
    "gaussian_crlb",
    "calibrate_psf",
    "StudentTMixture",
    "SNPEProposal",
    "FailureClassifier",
    "SNPEBRound",
    "SNPEB",
    "importance_weights",
    "effective_sample_size",
    "calibration_kernel",
    "marginal_summary",
    "weighted_and_unweighted",
    "snpe_a_correction",
    "LinearCalciumModel",
    "SaturatingCalciumModel",
    "SpineCalciumModel",
    "ar1_calcium",
    "gaussian_log_likelihood",
    "bernoulli_log_prob",
    "vimco_objective",
    "SpikeVAE",
    "make_snippets",
    "train_spike_vae",
    "fit_spike_vae",
    "train_supervised_spikes",
]
