"""Defaults of the early-bird detector, in one place: Early-Bird's window of recent masks, and the distance
threshold of a model's architecture, which its adapter holds (ebcore.adapters.FamilyAdapter.default_threshold:
0.1 for the vision models, 0.01 for the language models, decoder LLMs included, as in the study).

    default_threshold(model)      # from the model's adapter
    default_threshold("vit")      # by adapter name: 0.1
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UnsupportedModelError

if TYPE_CHECKING:
    from torch import nn

WINDOW = 5   # Early-Bird (You et al. 2020): the ticket when the newest mask is within the threshold of the last 5


def default_threshold(model_or_adapter: "nn.Module | str") -> float:
    """The mask-distance threshold of a model's architecture (or of an adapter by name, e.g. "vit")."""
    from .adapters import ADAPTERS, get_adapter
    if isinstance(model_or_adapter, str):
        if model_or_adapter not in ADAPTERS:
            raise UnsupportedModelError(f"no adapter named {model_or_adapter!r}; adapters: {sorted(ADAPTERS)} "
                                        "(or pass threshold= explicitly)")
        return ADAPTERS[model_or_adapter].default_threshold
    return get_adapter(model_or_adapter).default_threshold
