"""Short audio clips: read with soundfile, mix to mono, resample, log-mel filterbank in torch.

Frames are STFT hops: ``hop_ms`` milliseconds each; the model's time stride turns them into
CTC frames of ``hop_ms * stride`` milliseconds, which the FrameAxis maps to seconds.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np

from ..augmentation import AugmentPolicy
from ..augmentation.audio import augment_waveform, spec_augment, vtlp_factor
from ..errors import ConfigError, FeatureError
from ..manifest import ManifestItem
from . import Features, FrameAxis, check_config_types, short_reason
from .resample import resample

# A speech band's log energy varies by 3.5-6 nats (standard deviation) over a clip; an empty
# band by far less than 0.01. Measured on the speech tuning split's 8 kHz copies (make bench-recipe).
DEFAULT_BAND_STD_FLOOR = 1.0
MIN_SOURCE_RATE = 1000  # Hz; slower "audio" is a corrupt header
MAX_SOURCE_RATE = 384_000  # Hz; the highest rate audio interfaces record at


@dataclass(frozen=True)
class AudioFeatureConfig:
    sample_rate: int = 16000  # Hz; every clip is resampled to it
    n_mels: int = 64  # mel bands
    win_ms: float = 25.0  # analysis window, milliseconds
    hop_ms: float = 10.0  # step between frames, milliseconds
    f_min: float = 20.0  # Hz, lowest mel band edge
    f_max: float = 0.0  # Hz, highest mel band edge; 0 = Nyquist
    max_seconds: float = 120.0  # longest clip or segment accepted, seconds (--max-seconds)
    # Natural-log units: a band whose log energy varies less than this over the clip is scaled
    # as if it varied this much. Bands a clip does not have (above 4 kHz in 8 kHz audio) then
    # stay near 0 instead of their resampling residue being blown up to unit variance. 0 (none)
    # in files from before it (format 5), which keep their features; new models DEFAULT_BAND_STD_FLOOR.
    band_std_floor: float = 0.0
    type: str = "audio"

    def __post_init__(self) -> None:
        check_config_types(self)
        if not 0.1 <= self.max_seconds <= 36000:
            raise ConfigError(f"max_seconds must be between 0.1 and 36000, got {self.max_seconds}")
        if not 4000 <= self.sample_rate <= 96000:
            raise ConfigError(f"sample_rate must be 4000-96000 Hz, got {self.sample_rate}")
        if not 8 <= self.n_mels <= 256:
            raise ConfigError(f"n_mels must be 8-256, got {self.n_mels}")
        if not 0 < self.hop_ms <= self.win_ms <= 100:
            raise ConfigError(f"need 0 < hop_ms <= win_ms <= 100, got {self.hop_ms} and {self.win_ms}")
        if not 0 <= self.band_std_floor <= 10:
            raise ConfigError(f"band_std_floor must be between 0 and 10, got {self.band_std_floor}")
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < (self.f_max or nyquist) <= nyquist:
            raise ConfigError(f"need 0 <= f_min < f_max <= {nyquist:g} Hz, got {self.f_min} and {self.f_max}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioFeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def hop_samples(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def win_samples(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 1 << math.ceil(math.log2(self.win_samples))


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)  # HTK mel scale


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=64)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                   warp: float = 1.0) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1] on the HTK mel scale, each with unit area in mel.

    ``warp`` != 1 is vocal-tract-length perturbation (Jaitly and Hinton, 2013): the band edges
    move by that factor below a cut-off (the same speech from a longer or shorter vocal tract)
    and piecewise-linearly above it, so the top edge stays at ``f_max``."""
    f_max = f_max or sample_rate / 2
    bins_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    if warp != 1.0:
        edges = vtlp_warp(edges, warp, f_max)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    bank *= 2.0 / (upper - lower)  # Slaney-style normalization: equal energy per band
    return bank.astype(np.float32)


def vtlp_warp(hz: np.ndarray, warp: float, f_max: float) -> np.ndarray:
    """Frequencies scaled by ``warp`` up to a cut-off, then a straight line to (f_max, f_max)."""
    cutoff = 0.6 * f_max * min(warp, 1.0) / warp  # Hz: below it, f -> warp * f
    high = f_max - (f_max - warp * cutoff) * (f_max - hz) / (f_max - cutoff)
    return np.where(hz <= cutoff, warp * hz, high)


def read_clip(item: ManifestItem, sample_rate: int, max_seconds: float | None = None
              ) -> tuple[np.ndarray, float, float]:
    """Mono float32 samples at ``sample_rate``, the segment's start (s) and the file's length (s)."""
    mono, rate, offset, length_s = read_segment(item, max_seconds)
    return resample(mono, rate, sample_rate), offset, length_s


def segment_of(item: ManifestItem, max_seconds: float | None = None):
    """(soundfile info, first sample, sample count) of the item's segment, from the header alone:
    a missing or unreadable file, an offset or duration past the end, a channel the file lacks
    and a clip over ``max_seconds`` are FeatureErrors here, before any sample is read."""
    import soundfile

    path = item.resolved_path
    try:
        info = soundfile.info(path)
    except FileNotFoundError:
        raise FeatureError(item.where, f"path: no such file {path}") from None
    except Exception as exc:  # noqa: BLE001 - libsndfile's errors: unknown format, truncated header...
        if os.path.isdir(path):
            raise FeatureError(item.where, f"path: {path} is a folder, not an audio file") from None
        if not os.path.exists(path):
            raise FeatureError(item.where, f"path: no such file {path}") from None
        raise FeatureError(item.where, f"path: cannot read audio {path}: {short_reason(exc)}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise FeatureError(item.where, f"path: audio file {path} has no samples")
    if not MIN_SOURCE_RATE <= info.samplerate <= MAX_SOURCE_RATE:
        # a header's rate decides how many samples a second of audio holds: 1e9 Hz would make
        # one second four gigabytes
        raise FeatureError(item.where, f"path: audio file {path} claims {info.samplerate} Hz; expected "
                                       f"{MIN_SOURCE_RATE}-{MAX_SOURCE_RATE} Hz")
    length_s = info.frames / info.samplerate
    start, frames = 0, info.frames
    offset = item.offset or 0.0
    if item.offset is not None:
        start = round(item.offset * info.samplerate)
        if start >= info.frames:
            raise FeatureError(item.where, f"offset: {item.offset} s is past the end of {path} ({length_s:.3f} s)")
        frames = info.frames - start
    if item.duration is not None:
        wanted = round(item.duration * info.samplerate)
        if wanted - frames <= info.samplerate // 1000:  # manifests round durations to the millisecond
            wanted = min(wanted, frames)
        if wanted > frames:
            raise FeatureError(item.where, f"duration: {offset} + {item.duration} s runs past the end of {path} "
                                           f"({length_s:.3f} s)")
        frames = wanted
    if item.channel is not None and item.channel >= info.channels:
        raise FeatureError(item.where, f"channel: {item.channel!r} is not a channel of {path} "
                                       f"(it has {info.channels}: 0-{info.channels - 1})")
    if max_seconds is not None and frames > max_seconds * info.samplerate:
        raise FeatureError(item.where, f"duration: {frames / info.samplerate:.1f} s of audio in {path} is over "
                                       f"the --max-seconds limit of {max_seconds:g} s")
    return info, start, frames


def read_segment(item: ManifestItem, max_seconds: float | None = None) -> tuple[np.ndarray, int, float, float]:
    """Mono float32 samples at the file's own rate, that rate, the segment's start (s) and the
    file's length (s). Every check of an audio item lives here (``manifest validate`` runs it too)."""
    import soundfile

    path = item.resolved_path
    info, start, frames = segment_of(item, max_seconds)
    offset = item.offset or 0.0
    length_s = info.frames / info.samplerate
    try:
        samples, rate = soundfile.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise FeatureError(item.where, f"path: cannot decode audio {path}: {short_reason(exc)}") from None
    if samples.shape[0] == 0:
        raise FeatureError(item.where, f"path: audio file {path} has no samples")
    if samples.shape[0] < frames * 0.99:  # libsndfile stops early on a truncated file
        raise FeatureError(item.where, f"path: audio file {path} is truncated ({samples.shape[0]} of {frames} "
                                       "samples readable)")
    cut = _truncated_wav(path) if path.lower().endswith((".wav", ".wave")) else None
    if cut is not None:
        raise FeatureError(item.where, f"path: audio file {path} is truncated (header declares {cut[0]} bytes "
                                       f"of samples, {cut[1]} present)")
    if item.channel is not None:
        mono = samples[:, item.channel]  # segment_of checked it exists
    else:
        mono = samples.mean(axis=1)
    if not np.isfinite(mono).all():
        raise FeatureError(item.where, f"path: audio file {path} holds NaN or infinite samples")
    return mono, int(rate), offset, length_s


def _truncated_wav(path: str) -> tuple[int, int] | None:
    """(declared, present) data bytes when a RIFF/WAVE file is cut short, else None.

    libsndfile quietly shortens such files to what is there, so we read the header ourselves.
    """
    import struct

    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                return None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"data":
                    present = os.path.getsize(path) - handle.tell()
                    return (size, present) if size != 0xFFFFFFFF and present < size else None
                handle.seek(size + (size & 1), 1)
    except OSError:
        return None


@dataclass(frozen=True)
class PreparedClip:
    """A clip before augmentation (AudioFeatures.prepare)."""

    samples: np.ndarray  # float32 mono at the model's sample rate, read-only
    offset: float  # where the segment starts in its file, s
    length_s: float  # the file's length, s

    @property
    def nbytes(self) -> int:
        return self.samples.nbytes


class AudioFeatures:
    modality = "audio"

    def __init__(self, config: AudioFeatureConfig | None = None):
        self.config = config or AudioFeatureConfig()

    @property
    def feature_dim(self) -> int:
        return self.config.n_mels

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def with_limits(self, max_seconds: float | None = None, **_: Any) -> AudioFeatures:
        return self if max_seconds is None else AudioFeatures(replace(self.config, max_seconds=max_seconds))

    def frames_for(self, samples: int) -> int:
        return 1 + samples // self.config.hop_samples  # centred STFT frames

    def frames_hint(self, item: ManifestItem, at_least: int = 0, exact: bool = False,
                    prepare: Callable[[], PreparedClip] | None = None) -> int:  # exact from the header: no prepare
        info, _, frames = segment_of(item, self.config.max_seconds)
        return self.frames_for(int(frames * self.config.sample_rate / info.samplerate))

    def load(self, item: ManifestItem, rng: random.Random | None = None,
             policy: AugmentPolicy | None = None) -> Features:
        return self.finish(item, self.prepare(item), rng, policy)

    def prepare(self, item: ManifestItem) -> PreparedClip:
        """The clip's samples, decoded and resampled: the same on every epoch, so training keeps
        them (data.PreparedCache) and redoes only the augmentation and the spectrum."""
        samples, offset, length_s = read_clip(item, self.config.sample_rate, self.config.max_seconds)
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        samples.setflags(write=False)  # kept across epochs: augmentation works on a copy
        return PreparedClip(samples, offset, length_s)

    def finish(self, item: ManifestItem, clip: PreparedClip, rng: random.Random | None = None,
               policy: AugmentPolicy | None = None) -> Features:
        """``clip``'s features, augmented when ``rng`` is given (``policy``: the default preset
        when None). ``clip`` is left as it was."""
        samples = clip.samples
        warp = 1.0
        if rng is not None:
            policy = policy or AugmentPolicy()
            samples = augment_waveform(samples, self.config.sample_rate, rng, policy)
            warp = vtlp_factor(rng, policy)
        values = self.log_mel(samples, warp=warp)
        if not np.isfinite(values).all():  # e.g. float samples near 1e18 overflow the power spectrum
            peak = float(np.abs(samples).max()) if samples.size else 0.0
            raise FeatureError(item.where, f"path: audio {item.resolved_path} gives non-finite features "
                                           f"(peak sample value {peak:.3g}; float audio should lie in -1..1)")
        if rng is not None:
            values = spec_augment(values, rng, policy)
        hop_s = self.config.hop_samples / self.config.sample_rate
        # After speed perturbation a frame covers a little more or less source time; the axis
        # is only used for inference, where there is no augmentation.
        end = clip.offset + (item.duration if item.duration is not None else clip.length_s - clip.offset)
        axis = FrameAxis(origin=clip.offset, step=hop_s, unit="s", start=clip.offset, extent=end)
        return Features(values, axis)

    def log_mel(self, samples: np.ndarray, normalize: bool = True, warp: float = 1.0) -> np.ndarray:
        """[n_mels, frames] log-mel energies, normalized per band over the utterance. A clip of
        more than CHUNK_FRAMES frames is transformed a chunk of frames at a time: the complex
        spectrum of a whole hour (201 bins x 360,000 frames) took about 1.5 GB with its power."""
        import torch

        c = self.config
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        # A prepared clip's samples are read-only (shared across epochs); torch wants its own.
        wave = torch.from_numpy(samples if samples.flags.writeable else samples.copy())
        if wave.numel() < c.n_fft // 2 + 1:  # reflect padding needs a little signal
            wave = torch.nn.functional.pad(wave, (0, c.n_fft // 2 + 1 - wave.numel()))
        bank = torch.from_numpy(mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max, warp))
        window = torch.hann_window(c.win_samples)
        frames = self.frames_for(len(samples))

        def log_energies(piece, center: bool):
            spectrum = torch.stft(piece, n_fft=c.n_fft, hop_length=c.hop_samples, win_length=c.win_samples,
                                  window=window, center=center, return_complex=True)
            return torch.log(bank @ spectrum.abs().pow(2) + 1e-6)

        if frames <= CHUNK_FRAMES:
            mel = log_energies(wave, center=True)[:, :frames]
        else:
            mel = torch.empty((c.n_mels, frames), dtype=torch.float32)
            for first in range(0, frames, CHUNK_FRAMES):
                last = min(frames, first + CHUNK_FRAMES)
                # Frame t covers padded samples [t * hop, t * hop + n_fft), the padding being the
                # centred STFT's reflection of n_fft / 2 samples at each end.
                piece = _reflect_padded(wave, first * c.hop_samples, (last - 1) * c.hop_samples + c.n_fft,
                                        c.n_fft // 2)
                mel[:, first:last] = log_energies(piece, center=False)
        if not normalize:
            return mel.numpy().astype(np.float32)
        mean = mel.mean(dim=1, keepdim=True)
        std = mel.std(dim=1, keepdim=True) if mel.shape[1] > 1 else torch.ones_like(mean)
        if c.band_std_floor > 0:
            std = std.clamp(min=c.band_std_floor)
        return ((mel - mean) / (std + 1e-5)).numpy().astype(np.float32)


CHUNK_FRAMES = 6000  # STFT frames transformed at once: 60 s at 10 ms hops, about 10 MB of spectrum


def _reflect_padded(wave, start: int, stop: int, pad: int):
    """Samples ``start:stop`` of ``wave`` reflect-padded by ``pad`` at both ends (as a centred
    STFT pads it), without building the padded copy of the whole wave."""
    import torch

    n = wave.numel()
    low, high = start - pad, stop - pad  # in the wave's own indices
    parts = []
    if low < 0:  # index -k reflects to k
        parts.append(wave[1:1 - low].flip(0))
    parts.append(wave[max(low, 0):min(high, n)])
    if high > n:  # index n - 1 + k reflects to n - 1 - k
        parts.append(wave[2 * n - 1 - high:n - 1].flip(0))
    return parts[0] if len(parts) == 1 else torch.cat(parts)
