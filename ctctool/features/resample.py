"""Band-limited resampling (polyphase Kaiser-windowed sinc) in numpy: no torchaudio, no librosa."""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

ZERO_CROSSINGS = 16  # filter half-length in zero crossings of the narrower band: ~ -90 dB stopband
KAISER_BETA = 8.6
ROLLOFF = 0.945  # cutoff as a fraction of the lower Nyquist frequency, leaves room for the transition band


@lru_cache(maxsize=32)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """Polyphase filters [up, taps] for output rate up/down x input rate, and the filter's half width."""
    cutoff = ROLLOFF * min(1.0, up / down)  # relative to the input Nyquist, after upsampling by `up`
    half = int(np.ceil(ZERO_CROSSINGS / cutoff))  # half width in input samples
    taps = 2 * half + 1
    # tap j of phase p sits at input offset (j - half) - p/up from the output instant
    offsets = (np.arange(taps)[None, :] - half) - np.arange(up)[:, None] / up
    # Kaiser window evaluated at those (fractional) offsets, reaching zero just past the last tap
    ratio = np.clip(1.0 - (offsets / (half + 1)) ** 2, 0.0, 1.0)
    window = np.i0(KAISER_BETA * np.sqrt(ratio)) / np.i0(KAISER_BETA)
    bank = cutoff * np.sinc(cutoff * offsets) * window
    return bank.astype(np.float64), half


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``samples`` (1-D float) from ``source_rate`` Hz to ``target_rate`` Hz."""
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError("sample rates must be positive")
    common = gcd(int(source_rate), int(target_rate))
    up, down = int(target_rate) // common, int(source_rate) // common
    bank, half = _filter_bank(up, down)
    n_out = int(np.ceil(len(samples) * up / down))
    padded = np.concatenate([np.zeros(half + 1), samples.astype(np.float64), np.zeros(half + 2)])
    out = np.empty(n_out, dtype=np.float64)
    chunk = 8192  # output samples per step keeps the gathered index matrix small
    taps = bank.shape[1]
    for start in range(0, n_out, chunk):
        n = np.arange(start, min(n_out, start + chunk))
        position = n * down  # in units of 1/up input samples
        base = position // up
        phase = position % up
        index = base[:, None] + np.arange(taps)[None, :] + 1  # +1: the padding in front (half + 1)
        out[n] = np.einsum("ij,ij->i", padded[index], bank[phase])
    return out.astype(np.float32)
