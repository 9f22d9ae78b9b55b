"""INR models of qiren-gen: the QIREN decoder and the paper's classical baselines (diffusers ModelMixin)."""
from .baselines import MLP, SIREN, FourierFeatureMLP
from .modulated import LatentModulator, ModulatedQIREN, ModulatedSIREN
from .synthesis import FeatureSynthesisDecoder
from .qfgn import QFGN
from .qiren import QIREN, HybridLayer
from .qvf import QVF
from .registry import MODEL_BUILDERS, QIREN_PLUS, build_inr, is_qiren_plus, parameter_table
from .wide import ModulatedWideQIREN

__all__ = ["QIREN", "HybridLayer", "QFGN", "QVF", "SIREN", "MLP", "FourierFeatureMLP", "MODEL_BUILDERS", "QIREN_PLUS", "build_inr",
           "is_qiren_plus", "parameter_table", "ModulatedQIREN", "ModulatedSIREN", "LatentModulator",
           "FeatureSynthesisDecoder", "ModulatedWideQIREN", "DECODER_CLASSES"]

DECODER_CLASSES = (ModulatedQIREN, ModulatedSIREN, FeatureSynthesisDecoder, ModulatedWideQIREN)
"""Every modulated decoder a generation pipeline or a stage-1 folder may hold."""
from .denoiser import LatentDenoiser, LatentDenoiserOutput  # noqa: E402

__all__ += ["LatentDenoiser", "LatentDenoiserOutput"]
