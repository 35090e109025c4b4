"""ebcore: early-bird lottery tickets for Hugging Face Transformers.

    mask = ebcore.draw_mask(model, 0.3)          # score heads/FFN channels and draw a 30% mask
    ebcore.prune_model(model, mask)              # remove them (verified); rebuild the optimizer after

Structured masks over attention heads and FFN channels, an early-bird ticket detector, verified
physical pruning through Torch-Pruning's dependency graph, and saving/loading of pruned models.
"""
import warnings as _warnings

from tqdm import TqdmWarning as _TqdmWarning

# Dependencies import tqdm.auto, which warns inside a kernel without ipywidgets; ebcore's own bars are text
# bars there (ebcore.study.progress), so the warning says nothing useful to a notebook reader.
_warnings.filterwarnings("ignore", message="IProgress not found", category=_TqdmWarning)

from .adapters import SUPPORTED_CLASSES, family_of, get_adapter, prepare_model
from .errors import (CheckpointError, CheckpointExistsError, DataNotFoundError, EbcoreError, InvalidArgumentError,
                     InvalidRatioError, MaskMismatchError, NotPortableError, PruningError, UnsupportedModelError)
from .graph import ModelGraph
from .masks import LayerMask, Mask, draw_mask, mask_distance, mask_from_scores, pairwise_distances, random_mask
from .scores import Scores, score_model
from .measure import count_parameters
from .surgery import PruneReport, apply_soft_mask, prune_model, soft_masked

__version__ = "0.1.0"

__all__ = [
    "SUPPORTED_CLASSES", "family_of", "get_adapter", "prepare_model",
    "CheckpointError", "CheckpointExistsError", "DataNotFoundError", "EbcoreError", "InvalidArgumentError",
    "InvalidRatioError", "MaskMismatchError", "NotPortableError", "PruningError",
    "UnsupportedModelError", "ModelGraph", "LayerMask", "Mask", "draw_mask", "mask_distance", "mask_from_scores",
    "pairwise_distances", "random_mask", "Scores", "score_model", "PruneReport", "apply_soft_mask",
    "count_parameters", "prune_model", "soft_masked",
]
