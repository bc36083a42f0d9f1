"""Networks: density estimators, recognition networks and the U-Nets (no training, no data).

* :mod:`~neuroinverse.models.connectome_net`: Connectome-constrained network of passive point
  neurons with graded rectified synapses.
* :mod:`~neuroinverse.models.decode`: DECODE's network: a frame-module U-Net, a context-module U-Net
  and four output heads.
* :mod:`~neuroinverse.models.density`: Conditional density estimators q(value | context) for
  simulation-based inference.
* :mod:`~neuroinverse.models.error_predictor`: The error predictor of learning-guided SEM: fast scan
  and its membrane map → error logits.
* :mod:`~neuroinverse.models.fouriernet`: FourierNet: a global Fourier-domain convolution followed
  by a small 3-D convolutional head.
* :mod:`~neuroinverse.models.mdn`: Mixture density network (MDN) with full-covariance components,
  optionally Bayesian (SVI).
* :mod:`~neuroinverse.models.pssr_unet`: The paper-scale PSSR network: a bilinear-first U-Net with a
  weight-normalised ResNet-34 encoder.
* :mod:`~neuroinverse.models.recognition`: Recognition networks q_φ(s | f) for spike inference from
  fluorescence traces.
* :mod:`~neuroinverse.models.resunet`: A residual U-Net on the low-resolution grid with a
  pixel-shuffle output, for super-resolution.
* :mod:`~neuroinverse.models.unet`: One U-Net for the whole book, in 2-D and 3-D, with "same" or
  "valid" convolutions.

Chapters import from here (``from neuroinverse.models import ...``).
"""

from .connectome_net import (
    ConnectomeNetwork,
)
from .decode import (
    DecodeNet,
    DecodeScales,
)
from .density import (
    ConditionalDensity,
    ConditionalFlow,
)
from .error_predictor import (
    ErrorPredictor,
)
from .fouriernet import (
    FourierConv2d,
    FourierNet,
)
from .mdn import (
    MDN,
    BayesianLinear,
    GRUEmbedding,
    gaussian_kl,
)
from .pssr_unet import (
    PSSRUNet,
)
from .recognition import (
    AutoregressiveSpikeRNN,
    FactorisedSpikeCNN,
)
from .resunet import (
    LRResUNet,
    ResBlock,
)
from .unet import (
    UNet,
)

__all__ = [
    "ConnectomeNetwork",
    "DecodeScales",
    "DecodeNet",
    "ConditionalDensity",
    "ConditionalFlow",
    "ErrorPredictor",
    "FourierConv2d",
    "FourierNet",
    "BayesianLinear",
    "GRUEmbedding",
    "MDN",
    "gaussian_kl",
    "PSSRUNet",
    "FactorisedSpikeCNN",
    "AutoregressiveSpikeRNN",
    "ResBlock",
    "LRResUNet",
    "UNet",
]
