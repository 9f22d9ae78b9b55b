"""INR models of qiren-gen: the QIREN decoder and the paper's classical baselines (diffusers ModelMixin)."""
from ..runtime.model_names import MODEL_ALIASES
from .baselines import MLP, SIREN, FourierFeatureMLP
from .modulated import LatentModulator, ModulatedQIREN, ModulatedSIREN
from .qfgn import QFGN
from .qiren import QIREN, HybridLayer
from .qvf import QVF
from .registry import (
    DECODER_BUILDERS,
    DECODER_CLASSES,
    DECODERS,
    MODEL_BUILDERS,
    QIREN_PLUS,
    build_decoder,
    build_inr,
    canonical_model_name,
    is_qiren_plus,
    parameter_table,
)
from .synthesis import FeatureSynthesisDecoder
from .wide import ModulatedWideQIREN

__all__ = ["QIREN", "HybridLayer", "QFGN", "QVF", "SIREN", "MLP", "FourierFeatureMLP", "MODEL_BUILDERS",
           "MODEL_ALIASES", "QIREN_PLUS", "build_inr", "canonical_model_name", "is_qiren_plus", "parameter_table",
           "ModulatedQIREN", "ModulatedSIREN", "LatentModulator", "FeatureSynthesisDecoder", "ModulatedWideQIREN",
           "DECODER_CLASSES", "DECODER_BUILDERS", "DECODERS", "build_decoder"]
from .denoiser import LatentDenoiser, LatentDenoiserOutput  # noqa: E402

__all__ += ["LatentDenoiser", "LatentDenoiserOutput"]
