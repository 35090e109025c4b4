"""ebcore: early-bird lottery tickets for Hugging Face Transformers.

Structured masks over attention heads and FFN channels, an early-bird ticket detector, verified
physical pruning through Torch-Pruning's dependency graph, and saving/loading of pruned models.
"""
from .adapters import SUPPORTED_CLASSES, family_of, get_adapter, prepare_model
from .errors import (CheckpointError, DataNotFoundError, EbcoreError, InvalidRatioError, MaskMismatchError,
                     PruningError, UnsupportedModelError)
from .graph import ModelGraph
from .masks import LayerMask, Mask, mask_distance, mask_from_scores, pairwise_distances, random_mask
from .scores import Scores, score_model
from .surgery import PruneReport, apply_soft_mask, count_parameters, prune_model, soft_masked

__version__ = "0.1.0"

__all__ = [
    "SUPPORTED_CLASSES", "family_of", "get_adapter", "prepare_model",
    "CheckpointError", "DataNotFoundError", "EbcoreError", "InvalidRatioError", "MaskMismatchError", "PruningError",
    "UnsupportedModelError", "ModelGraph", "LayerMask", "Mask", "mask_distance", "mask_from_scores",
    "pairwise_distances", "random_mask", "Scores", "score_model", "PruneReport", "apply_soft_mask",
    "count_parameters", "prune_model", "soft_masked",
]
