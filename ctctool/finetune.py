"""Fine-tuning: start training from a model's weights (``ctctool train --init MODEL``).

The parent model fixes the features (line height, or sample rate and mel bands) and the
network shape; what may change is the alphabet, by one of three modes:

- ``keep``: the parent's labels; transcript characters outside them are an error (or are
  skipped with ``lenient``);
- ``union``: the parent's labels in their order, then the training data's new characters;
  the output layer gains one row per new character, initialized small with the bias of the
  parent's rarest label, so the parent's predictions are unchanged until training moves them;
- ``replace``: a new alphabet from the training data; the output layer starts fresh, every
  other weight comes from the parent.

The result records its parent (path, SHA-256, mode, labels added) in its training metadata.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from .checkpoint import LoadedModel
from .codec import Codec, describe_unknown
from .errors import CodecError, OptionError
from .model import ModelConfig

ALPHABET_MODES = ("keep", "union", "replace")
# Peak learning rate when --init gives the weights and --lr is not given. Measured on en-digits,
# 150 steps on the bundled espeak-ng clips: at the from-scratch 2e-3 held-out espeak-ng WER went
# from 0.95% to 2.84% and other engines' from 0.63% to 6.60%; at 5e-4, 0.63% and 1.26%.
FINE_TUNE_LR = 5e-4
# Schedule and label smoothing when --init gives the weights: the from-scratch defaults
# (one-cycle, 0.1) were measured on from-scratch runs only (make bench-recipe); fine-tuning keeps
# the recipe its 5e-4 rate and make bench-finetune were measured with.
FINE_TUNE_SCHEDULE, FINE_TUNE_LABEL_SMOOTHING = "cosine", 0.0
OUTPUT_WEIGHT, OUTPUT_BIAS = "output.weight", "output.bias"


@dataclass(frozen=True)
class FineTuneStart:
    """What ``train`` starts from instead of random weights."""

    codec: Codec
    model_config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    parent: dict[str, Any] = field(default_factory=dict)  # recorded in the model's training metadata


def _fresh_output_rows(rows: int, fan_in: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows drawn like torch's default Linear init (uniform +-1/sqrt(fan_in)), from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(fan_in)
    weight = (torch.rand(rows, fan_in, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(rows, generator=generator) * 2 - 1) * bound
    return weight, bias


def fine_tune_start(parent: LoadedModel, texts: Iterable[str], mode: str, *, lenient: bool = False,
                    seed: int = 0, parent_name: str | None = None, parent_sha256: str | None = None) -> FineTuneStart:
    """The codec, network config and weights to train from, for alphabet ``mode``."""
    if mode not in ALPHABET_MODES:
        raise OptionError(f"--alphabet with --init must be one of {', '.join(ALPHABET_MODES)}, got {mode!r}")
    texts = list(texts)
    old = parent.codec
    state = {key: value.detach().clone() for key, value in parent.network.state_dict().items()}
    weight, bias = state[OUTPUT_WEIGHT], state[OUTPUT_BIAS]
    added: tuple[str, ...] = ()
    if mode == "keep":
        codec = old
        unknown = codec.unknown_characters(texts)
        if unknown and not lenient:
            raise CodecError(f"{sum(unknown.values())} characters in the transcripts are not in the model's "
                             f"alphabet: {describe_unknown(unknown)} (use --alphabet union to add them, or "
                             "--lenient to skip them)", dict(unknown))
    elif mode == "union":
        new = Codec.from_texts(texts, old.normalization) if any(texts) else old
        added = tuple(char for char in new.labels if char not in set(old.labels))
        codec = Codec(old.labels + added, old.normalization)
        if added:
            rows, rows_bias = _fresh_output_rows(len(added), weight.shape[1], seed)
            # New characters start as unlikely as the parent's least likely label: the parent's
            # output is almost unchanged at step 0, and training raises them where they occur.
            floor = bias[1:].min() if bias.numel() > 1 else bias.min()
            state[OUTPUT_WEIGHT] = torch.cat([weight, 0.1 * rows.to(weight.dtype)])
            state[OUTPUT_BIAS] = torch.cat([bias, torch.full_like(rows_bias, float(floor))])
    else:
        codec = Codec.from_texts(texts, old.normalization)
        rows, rows_bias = _fresh_output_rows(codec.size, weight.shape[1], seed)
        state[OUTPUT_WEIGHT], state[OUTPUT_BIAS] = rows.to(weight.dtype), rows_bias.to(bias.dtype)
        added = tuple(char for char in codec.labels if char not in set(old.labels))
    config = ModelConfig.from_dict({**parent.model_config.to_dict(), "num_classes": codec.size})
    info = {"model": parent_name or parent.path, "sha256": parent_sha256, "alphabet": mode,
            "labels_added": "".join(added), "parent_training": {
                key: parent.metadata.get(key) for key in ("steps", "best_val_cer", "train_manifest", "parent")
                if parent.metadata.get(key) is not None}}
    return FineTuneStart(codec, config, state, info)
