"""Audio augmentation: waveform operations before the log-mel features, the VTLP warp factor
the filterbank applies, and SpecAugment masks after. Times in seconds, levels in dB; ``k`` is
the preset's strength (1 for ``default``)."""

from __future__ import annotations

import math
import random

import numpy as np

from . import AugmentPolicy


def augment_waveform(samples: np.ndarray, sample_rate: int, rng: random.Random,
                     policy: AugmentPolicy | None = None) -> np.ndarray:
    """Speed, gain, room reverberation, telephone band, additive noise, a lower recording
    bandwidth: each with its chance."""
    policy = policy or AugmentPolicy()
    if not policy.active:
        return samples
    k = policy.strength()
    samples = samples.astype(np.float64)
    if rng.random() < policy.chance("speed", 0.5):
        # play 0.9-1.1x faster (default). Linear interpolation: the little aliasing it adds is
        # harmless noise here, and it is ~20x cheaper than a polyphase resampler.
        factor = math.exp(rng.uniform(-0.1, 0.1) * k)
        positions = np.arange(0, len(samples) - 1, factor)
        if len(positions) >= 2:
            samples = np.interp(positions, np.arange(len(samples)), samples)
    if rng.random() < policy.chance("gain", 0.5):
        samples = samples * 10 ** (rng.uniform(-6.0, 6.0) * k / 20)
    if rng.random() < policy.chance("reverb", 0.3):
        samples = reverberate(samples, sample_rate, rng, k)
    if rng.random() < policy.chance("telephone", 0.15):
        samples = telephone(samples, sample_rate, rng)
    if rng.random() < policy.chance("noise", 0.5):
        power = float(np.mean(samples ** 2)) + 1e-12
        snr_db = rng.uniform(35.0 - 25.0 * k, 35.0)  # 10-35 dB at default strength
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, 1.0, len(samples))
        if rng.random() < 0.5:  # brown-ish noise (hum, rumble, fans) as well as white
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(64) / 64, mode="same")
            noise /= np.std(noise) + 1e-12
        samples = samples + noise * math.sqrt(power / 10 ** (snr_db / 10))
    # Added 2026-12-07, so left out it draws nothing (AugmentPolicy.rolls): a run begun before it
    # resumes as -bandwidth with exactly its inputs. Last, so that the noise is band-limited too,
    # as in a recording made at the lower rate.
    if policy.rolls("bandwidth", 0.5, rng):
        samples = band_limited(samples, sample_rate, rng, k)
    return samples.astype(np.float32)


def band_limited(samples: np.ndarray, sample_rate: int, rng: random.Random, k: float = 1.0) -> np.ndarray:
    """A clip recorded at a lower sample rate and resampled up: nothing above a cutoff of
    3.5-7.5 kHz (3.5-5.5 kHz at default strength; 8 kHz telephone and 11.025 kHz audio put it at
    about 3.6 and 5 kHz). A steep edge, as a resampler's filter has."""
    cutoff = rng.uniform(3500.0, 3500.0 + 4000.0 * k)  # Hz
    if len(samples) < 2 or cutoff >= 0.95 * sample_rate / 2:
        return samples
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1.0 / sample_rate)
    return np.fft.irfft(spectrum / (1.0 + (hz / cutoff) ** 48), len(samples))  # -6 dB at the cutoff, -40 dB 10% above it


def room_impulse_response(sample_rate: int, rng: random.Random, k: float = 1.0) -> np.ndarray:
    """A synthetic room: a direct path, then exponentially decaying noise that falls by 60 dB
    over the reverberation time RT60 (0.15-0.6 s at default strength), after a short pre-delay."""
    rt60 = rng.uniform(0.15, 0.15 + 0.45 * k)  # seconds
    length = int(rt60 * sample_rate)
    noise_rng = np.random.default_rng(rng.getrandbits(32))
    times = np.arange(length) / sample_rate
    tail = noise_rng.normal(0.0, 1.0, length) * np.exp(-6.9 * times / rt60)  # ln(1000) = 6.9: -60 dB
    delay = int(rng.uniform(0.002, 0.01) * sample_rate)  # first reflections arrive 2-10 ms late
    response = np.zeros(length + delay)
    response[delay:] = tail
    direct_to_reverb = 10 ** (rng.uniform(-3.0, 12.0) / 20)  # dB: near the microphone .. far
    response *= 1.0 / (np.sqrt(np.sum(response ** 2)) + 1e-12)
    response[0] = direct_to_reverb
    return response


def reverberate(samples: np.ndarray, sample_rate: int, rng: random.Random, k: float = 1.0) -> np.ndarray:
    """Convolve with a synthetic room response (FFT); the output keeps the input's length and RMS."""
    if len(samples) == 0:
        return samples
    response = room_impulse_response(sample_rate, rng, k)
    size = 1 << math.ceil(math.log2(len(samples) + len(response) - 1))
    wet = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(response, size), size)[:len(samples)]
    rms_in = math.sqrt(float(np.mean(samples ** 2)) + 1e-20)
    rms_out = math.sqrt(float(np.mean(wet ** 2)) + 1e-20)
    return wet * (rms_in / rms_out)


def telephone(samples: np.ndarray, sample_rate: int, rng: random.Random) -> np.ndarray:
    """A telephone channel: band-limited to about 300-3400 Hz (soft edges), sometimes with the
    8-bit mu-law quantization of G.711."""
    if len(samples) < 2:
        return samples
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1.0 / sample_rate)
    low, high = rng.uniform(200.0, 400.0), rng.uniform(3000.0, 3700.0)
    gain = 1.0 / (1.0 + (low / np.maximum(hz, 1e-3)) ** 8) / (1.0 + (hz / high) ** 8)  # 4th-order-like edges
    out = np.fft.irfft(spectrum * gain, len(samples))
    if rng.random() < 0.5:
        peak = float(np.abs(out).max()) + 1e-12
        mu = 255.0
        encoded = np.sign(out / peak) * np.log1p(mu * np.abs(out / peak)) / np.log1p(mu)
        encoded = np.round(encoded * 127) / 127
        out = np.sign(encoded) * np.expm1(np.abs(encoded) * np.log1p(mu)) / mu * peak
    return out


def vtlp_factor(rng: random.Random, policy: AugmentPolicy | None = None) -> float:
    """The vocal-tract-length warp for this clip (1.0 = none), in steps of 0.01 so that the
    filterbanks the features cache stay few."""
    policy = policy or AugmentPolicy()
    if not policy.active or rng.random() >= policy.chance("vtlp", 0.5):
        return 1.0
    return round(math.exp(rng.uniform(-0.1, 0.1) * policy.strength()), 2)


def spec_augment(values: np.ndarray, rng: random.Random, policy: AugmentPolicy | None = None) -> np.ndarray:
    """SpecAugment-style masking: two frequency bands (<= 1/8 of the bands each) and two time
    spans (<= 5% of the frames each) set to the utterance mean (0 after normalization)."""
    policy = policy or AugmentPolicy()
    if rng.random() >= policy.chance("specaugment", 1.0):
        return values
    k = policy.strength()
    values = values.copy()
    bands, frames = values.shape
    for _ in range(2):
        width = rng.randint(0, max(1, int(bands / 8 * k)))
        start = rng.randint(0, max(0, bands - width))
        values[start:start + width, :] = 0.0
    for _ in range(2):
        width = rng.randint(0, max(1, int(frames / 20 * k)))
        start = rng.randint(0, max(0, frames - width))
        values[:, start:start + width] = 0.0
    return values
