"""ebcore: early-bird lottery tickets for Hugging Face Transformers.

    import ebcore as eb
    mask = eb.draw_mask(model, 0.3)                   # score heads/FFN channels and draw a 30% mask
    eb.prune_model(model, mask)                       # remove them (verified); rebuild the optimizer after
    eb.prune_with_optimizer(model, mask, opt)         # or: prune and carry AdamW's state (sliced) into `opt`
    detector = eb.EarlyBirdDetector(ratios=[0.3])     # the ticket: when consecutive masks stop changing
    eb.save_pruned(model, "ticket/"); model = eb.load_pruned("ticket/")

Structured masks over attention heads and FFN channels, an early-bird ticket detector, verified
physical pruning through Torch-Pruning's dependency graph, and saving/loading of pruned models.

Names are imported on first use (PEP 562), so `import ebcore` and the command line's `--help` stay fast:
torch, transformers and Torch-Pruning load only when a name that needs them is touched.
"""
from __future__ import annotations

import importlib
import warnings as _warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Dependencies import tqdm.auto, which warns inside a kernel without ipywidgets; ebcore's own bars are text
# bars there (ebcore.study.progress), so the warning says nothing useful to a notebook reader.
_warnings.filterwarnings("ignore", message="IProgress not found")

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("SUPPORTED_CLASSES", "family_of", "get_adapter", "prepare_model"), "adapters"),
    **dict.fromkeys(("CheckpointError", "CheckpointExistsError", "EbcoreError", "InvalidArgumentError",
                     "InvalidRatioError", "MaskMismatchError", "NotPortableError", "PruningError",
                     "UnsupportedModelError"), "errors"),
    "ModelGraph": "graph",
    **dict.fromkeys(("LayerMask", "Mask", "draw_mask", "mask_distance", "mask_from_scores", "pairwise_distances",
                     "random_mask"), "masks"),
    **dict.fromkeys(("Scores", "score_model"), "scores"),
    **dict.fromkeys(("count_parameters", "flops_per_sample"), "measure"),
    **dict.fromkeys(("PruneReport", "apply_soft_mask", "prune_model", "soft_masked"), "surgery"),
    **dict.fromkeys(("EarlyBirdDetector", "Ticket"), "detector"),
    **dict.fromkeys(("save_pruned", "load_pruned"), "io"),
    **dict.fromkeys(("default_threshold", "WINDOW"), "defaults"),
    **dict.fromkeys(("tiny_model", "tiny_batch"), "tiny"),
    **dict.fromkeys(("ParameterSlices", "prune_with_optimizer"), "optim_state"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ebcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # cached: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .adapters import SUPPORTED_CLASSES, family_of, get_adapter, prepare_model  # noqa: F401
    from .defaults import WINDOW, default_threshold  # noqa: F401
    from .detector import EarlyBirdDetector, Ticket  # noqa: F401
    from .errors import (CheckpointError, CheckpointExistsError, EbcoreError, InvalidArgumentError,  # noqa: F401
                         InvalidRatioError, MaskMismatchError, NotPortableError, PruningError, UnsupportedModelError)
    from .graph import ModelGraph  # noqa: F401
    from .io import load_pruned, save_pruned  # noqa: F401
    from .masks import (LayerMask, Mask, draw_mask, mask_distance, mask_from_scores, pairwise_distances,  # noqa: F401
                        random_mask)
    from .measure import count_parameters, flops_per_sample  # noqa: F401
    from .optim_state import ParameterSlices, prune_with_optimizer  # noqa: F401
    from .scores import Scores, score_model  # noqa: F401
    from .surgery import PruneReport, apply_soft_mask, prune_model, soft_masked  # noqa: F401
    from .tiny import tiny_batch, tiny_model  # noqa: F401
