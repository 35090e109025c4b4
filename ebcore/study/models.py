"""Model builders, one per family: a fresh transformers model (or the pretrained one) from a FamilySpec.

Each builder takes `(spec, num_labels, vocab_size, pad_token_id)` and imports transformers itself (importing
this module stays light); the family registry
(ebcore.study.families) names each family's builder, and `families.build_model` seeds the
initialization and makes the model prunable.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from .errors import DataNotFoundError
from .specs import FamilySpec

if TYPE_CHECKING:
    from torch import nn


def build_vit(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None) -> "nn.Module":
    import transformers as T
    config = T.ViTConfig(image_size=spec.data.image_size, num_channels=spec.data.channels, num_labels=num_labels,
                         **spec.model)
    return T.ViTForImageClassification(config)


def build_swin(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None) -> "nn.Module":
    import transformers as T
    config = T.SwinConfig(image_size=spec.data.image_size, num_channels=spec.data.channels, num_labels=num_labels,
                          **spec.model)
    return T.SwinForImageClassification(config)


def _need_vocab(spec: FamilySpec, vocab_size: int | None) -> int:
    if vocab_size is None:
        raise InvalidArgumentError(f"{spec.family} needs the tokenizer's vocab_size")
    return vocab_size


def build_gpt2(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None) -> "nn.Module":
    import transformers as T
    if spec.pretrained and spec.hub_name:
        return from_hub(spec, T.GPT2ForSequenceClassification, num_labels, pad_token_id)
    config = T.GPT2Config(vocab_size=_need_vocab(spec, vocab_size), num_labels=num_labels, pad_token_id=pad_token_id,
                          bos_token_id=pad_token_id, eos_token_id=pad_token_id, **spec.model)
    return T.GPT2ForSequenceClassification(config)


def build_roberta(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None) -> "nn.Module":
    import transformers as T
    if spec.pretrained and spec.hub_name:
        return from_hub(spec, T.RobertaForSequenceClassification, num_labels, pad_token_id)
    config = T.RobertaConfig(vocab_size=_need_vocab(spec, vocab_size), num_labels=num_labels,
                             pad_token_id=pad_token_id, **spec.model)
    return T.RobertaForSequenceClassification(config)


def build_minilm(spec: FamilySpec, num_labels: int, vocab_size: int | None, pad_token_id: int | None) -> "nn.Module":
    """The pretrained MiniLM-L6 that ships as a package (offline), with a new classifier head."""
    import transformers as T

    from .data import minilm_model_path
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    verbosity = T.logging.get_verbosity()
    T.logging.set_verbosity_error()  # the classifier head is new by design; no load report
    T.logging.disable_progress_bar()
    try:
        return T.BertForSequenceClassification.from_pretrained(str(minilm_model_path()), num_labels=num_labels,
                                                               **spec.model)
    finally:
        T.logging.set_verbosity(verbosity)
        T.logging.enable_progress_bar()


def from_hub(spec: FamilySpec, cls: type, num_labels: int, pad_token_id: int | None) -> "nn.Module":
    """A pretrained checkpoint from the Hugging Face hub (the `paper` profile), or a clear offline error."""
    import transformers as T
    try:
        model = cls.from_pretrained(spec.hub_name, num_labels=num_labels)
    except OSError as err:
        raise DataNotFoundError(
            f"the paper profile fine-tunes {spec.hub_name} from the Hugging Face hub, which cannot be reached "
            f"({err.__class__.__name__}). Offline, use profile 'cpu' (models trained from scratch) or family "
            "'bert' (the pretrained MiniLM that ships as a package).") from None
    if spec.family == "gpt2" and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model
