"""Defaults of the early-bird detector, in one place: the study's distance thresholds per family (0.1 for
the vision models, 0.01 for the language models, decoder LLMs included) and Early-Bird's window of recent masks. The detector,
the study's profiles and config, the Trainer callback and the examples all read them from here.

    default_threshold("vit")      # 0.1
    default_threshold(model)      # from the model's family (ebcore.adapters)
"""
from __future__ import annotations

from torch import nn

from .errors import UnsupportedModelError

THRESHOLDS: dict[str, float] = {"vit": 0.1, "swin": 0.1, "gpt2": 0.01, "roberta": 0.01, "bert": 0.01,
                               "llama": 0.01, "qwen2": 0.01, "mistral": 0.01, "gemma": 0.01}  # decoders: text, 0.01
WINDOW = 5   # Early-Bird (You et al. 2020): the ticket when the newest mask is within the threshold of the last 5


def default_threshold(model_or_family: nn.Module | str) -> float:
    """The study's mask-distance threshold for a model (or a family name)."""
    if isinstance(model_or_family, nn.Module):
        from .adapters import family_of
        family = family_of(model_or_family)
    else:
        family = model_or_family
    if family not in THRESHOLDS:
        raise UnsupportedModelError(f"no default threshold for family {family!r}; families: {sorted(THRESHOLDS)} "
                                    "(or pass threshold= explicitly)")
    return THRESHOLDS[family]
