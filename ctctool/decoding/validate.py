from __future__ import annotations

import numpy as np

from ..errors import DecodeInputError


def check_log_probs(log_probs, num_classes: int | None = None) -> np.ndarray:
    """Reject what would give a silent wrong answer: wrong rank, dtype, size, NaN, +inf."""
    if not isinstance(log_probs, np.ndarray):
        raise DecodeInputError(f"log_probs must be a numpy array, got {type(log_probs).__name__}")
    if log_probs.ndim != 2:
        raise DecodeInputError(f"log_probs must be 2-D [frames, classes], got shape {log_probs.shape}")
    if log_probs.dtype not in (np.float32, np.float64):
        raise DecodeInputError(f"log_probs must be float32 (or float64), got {log_probs.dtype}")
    if log_probs.shape[1] < 2:
        raise DecodeInputError(f"log_probs needs at least 2 classes (blank + one label), got {log_probs.shape[1]}")
    if num_classes is not None and log_probs.shape[1] != num_classes:
        raise DecodeInputError(f"log_probs has {log_probs.shape[1]} classes but the codec has {num_classes}")
    if not np.isfinite(log_probs).all():  # one pass for the common case; -inf is allowed
        if np.isnan(log_probs).any():
            raise DecodeInputError("log_probs contains NaN")
        if np.isposinf(log_probs).any():
            raise DecodeInputError("log_probs contains +inf (expected natural-log probabilities <= 0)")
    return np.ascontiguousarray(log_probs, dtype=np.float32)
