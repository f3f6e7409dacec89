"""Self-contained model files: plain Python values and tensors, safe to load from strangers.

A model file is a dict written by ``torch.save`` that ``torch.load(weights_only=True)`` reads
back: no pickled classes, so loading cannot run code. It carries everything needed to use
the model. Resume state (optimizer, scheduler, RNG, step) lives in the run folder instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from .codec import Codec
from .errors import CheckpointError, CtcToolError
from .features import FeatureExtractor, extractor_from_config
from .fileio import atomic_write
from .model import CTCRecognizer, ModelConfig, expected_weight_shapes
from .models import resolve_model
from .version import __version__

FORMAT_NAME = "ctctool-model"
FORMAT_VERSION = 5  # bump when the layout changes; readers refuse files newer than they know
MIN_READER_VERSION = 1  # oldest reader format version that can use files written now...
# ...unless the file needs something a format-1 reader would silently ignore: image features
# with ``deslant`` (format 2). Such files ask for a format-2 reader, so an older ctctool refuses
# them instead of reading every line unsheared.
DESLANT_READER_VERSION = 2
# Likewise ``center_normalize`` (format 3): a format-2 reader would read every line un-normalized.
CENTER_READER_VERSION = 3
# And centre normalization that measures ink against each line's own paper (``center_ink``
# "relative", format 4): a format-3 reader would measure it against the fixed level.
CENTER_INK_READER_VERSION = 4
# And audio features whose band normalization has a floor (``band_std_floor``, format 5): a
# format-4 reader would scale empty bands up to unit variance.
BAND_FLOOR_READER_VERSION = 5


def min_reader_version(features: dict[str, Any]) -> int:
    if features.get("band_std_floor"):
        return BAND_FLOOR_READER_VERSION
    if features.get("center_normalize"):
        return CENTER_INK_READER_VERSION if features.get("center_ink") == "relative" else CENTER_READER_VERSION
    return DESLANT_READER_VERSION if features.get("deslant") else MIN_READER_VERSION


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` through ``atomic_write``: readers never see half a file; failures name ``path``."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)


def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The unwrapped model's weights on CPU, each its own storage.

    Unwraps DDP / torch.compile prefixes, and clones so LSTM weights that share storage
    after ``flatten_parameters`` are saved separately.
    """
    module = getattr(model, "module", model)
    module = getattr(module, "_orig_mod", module)
    return {key: value.detach().to("cpu").clone() for key, value in module.state_dict().items()}


@dataclass
class LoadedModel:
    network: CTCRecognizer
    codec: Codec
    extractor: FeatureExtractor
    model_config: ModelConfig
    modality: str
    metadata: dict[str, Any]  # training metadata: data hashes, best score, seed, steps...
    path: str
    # Inputs longer than this many feature frames run in overlapping windows (inference.py);
    # None = the modality's default, 0 = never.
    window_frames: int | None = None
    # Reader processes for inference (reading and features overlap the network); 0 = read in
    # this process.
    read_workers: int = 0

    @property
    def time_stride(self) -> int:
        return self.model_config.time_stride


def model_payload(network: torch.nn.Module, codec: Codec, extractor: FeatureExtractor,
                  model_config: ModelConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "min_reader_version": min_reader_version(extractor.config_dict()),
        "ctctool_version": __version__,
        "modality": extractor.modality,
        "codec": codec.to_dict(),
        "features": extractor.config_dict(),
        "model_config": model_config.to_dict(),
        "time_stride": {"input_frames_per_output": model_config.time_stride},
        "training": metadata,
        "state_dict": plain_state_dict(network),
    }


def save_model(path: str, network: torch.nn.Module, codec: Codec, extractor: FeatureExtractor,
               model_config: ModelConfig, metadata: dict[str, Any]) -> None:
    """Write a model file; one whose weights hold NaN or infinity is refused (it could only
    give garbage, silently)."""
    payload = model_payload(network, codec, extractor, model_config, metadata)
    bad = next((key for key, value in payload["state_dict"].items()
                if value.is_floating_point() and not torch.isfinite(value).all()), None)
    if bad is not None:
        raise CheckpointError(f"{path}: not written: weight {bad} holds NaN or infinite values")
    atomic_torch_save(payload, path)


def safe_torch_load(path: str, what: str = "model file") -> Any:
    """``torch.load(weights_only=True)`` with errors that name ``path`` in one line and never
    repeat torch's advice to load with ``weights_only=False`` (that would run a stranger's code).
    Shared by model files and resume state."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, expected a {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, foreign pickle, truncated file...
        text = str(exc).strip()
    if any(word in text for word in ("Unsupported global", "unsupported GLOBAL", "Unsupported class", "is blocked")):
        raise CheckpointError(f"{path}: refused: the file holds Python objects other than plain values and "
                              f"tensors (loading it could run code); it is not a ctctool {what}")
    lines = [line for line in text.splitlines() if line.strip()]
    reason = next((line.split("error:", 1)[1] for line in lines if "WeightsUnpickler error:" in line),
                  lines[0] if lines else "unreadable")
    if "weights_only" in reason:
        reason = "unreadable pickle data"
    raise CheckpointError(f"{path}: not a ctctool {what} or it is corrupt ({reason.strip()[:160]})")


def read_model_file(path: str) -> dict[str, Any]:
    """The raw payload, checked for format and version; never unpickles code."""
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a ctctool model file (no '{FORMAT_NAME}' format tag)")
    reader = payload.get("min_reader_version", 1)
    if isinstance(reader, bool) or not isinstance(reader, int):
        raise CheckpointError(f"{path}: min_reader_version: expected an integer, got {reader!r}")
    if reader > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by ctctool {payload.get('ctctool_version')} in model format "
            f"{payload.get('format_version')}; this ctctool {__version__} reads format {FORMAT_VERSION}: upgrade ctctool"
        )
    for key in ("codec", "features", "model_config", "state_dict", "training"):
        if key not in payload:
            raise CheckpointError(f"{path}: model file lacks '{key}'")
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"{path}: {key}: expected a mapping, got {type(payload[key]).__name__}")
    labels = payload["codec"].get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise CheckpointError(f"{path}: codec.labels: expected a list of strings")
    return payload


def check_weights(path: str, model_config: ModelConfig, state_dict: dict[str, Any]) -> None:
    """Every weight the network needs, with the shape the config implies, and nothing else;
    checked before the network is built, so a config claiming a huge network allocates nothing."""
    expected = expected_weight_shapes(model_config)
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: state_dict: expected a mapping of tensors")
    for key, shape in expected.items():
        value = state_dict.get(key)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: state_dict.{key}: missing (the model config needs it)")
        if tuple(value.shape) != shape:
            raise CheckpointError(f"{path}: state_dict.{key}: shape {list(value.shape)} does not match the model "
                                  f"config ({list(shape)})")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: state_dict.{key}: holds NaN or infinite values")
    extra = sorted(set(state_dict) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: state_dict.{extra[0]}: not a weight of this network")


def model_parts(path: str, fields: dict[str, Any]) -> tuple[Codec, FeatureExtractor, ModelConfig]:
    """Codec, feature extractor and network config from a model's ``codec``, ``features`` and
    ``model_config`` mappings (a model file's, or an exported ONNX file's metadata), checked
    against each other; errors name ``path``."""
    try:
        codec = Codec.from_dict(fields["codec"])
        extractor = extractor_from_config(fields["features"])
        model_config = ModelConfig.from_dict(fields["model_config"])
    except (CtcToolError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: model is inconsistent: {exc}") from None
    if model_config.num_classes != codec.size:
        raise CheckpointError(f"{path}: network has {model_config.num_classes} outputs but the codec {codec.size}")
    if model_config.feature_dim != extractor.feature_dim:
        raise CheckpointError(f"{path}: network reads {model_config.feature_dim} feature rows but the features "
                              f"give {extractor.feature_dim}")
    # Readers derive the stride and the modality from the network and the features; a file whose
    # own copies disagree was edited or corrupted, and whichever a tool believed would be wrong.
    stride = fields.get("time_stride")
    if stride is not None:
        stored = stride.get("input_frames_per_output") if isinstance(stride, dict) else stride
        if stored != model_config.time_stride:  # strides are 2, 4 or 8, so a bool never passes
            raise CheckpointError(f"{path}: time_stride.input_frames_per_output: {stored!r} does not match the "
                                  f"network's stride ({model_config.time_stride} input frames per output)")
    modality = fields.get("modality")
    if modality is not None and modality != extractor.modality:
        raise CheckpointError(f"{path}: modality: {modality!r} does not match the features ({extractor.modality!r})")
    return codec, extractor, model_config


def load_model(path: str, device: str | torch.device = "cpu") -> LoadedModel:
    """A model file, or a bundled model by name (``latin-print``), ready on ``device``."""
    path = resolve_model(path)
    payload = read_model_file(path)
    codec, extractor, model_config = model_parts(path, payload)
    check_weights(path, model_config, payload["state_dict"])
    network = CTCRecognizer(model_config)
    network.load_state_dict(payload["state_dict"])
    network.to(device).eval()
    return LoadedModel(
        network=network,
        codec=codec,
        extractor=extractor,
        model_config=model_config,
        modality=extractor.modality,
        metadata=dict(payload.get("training", {})),
        path=path,
    )


def describe_model(path: str) -> dict[str, Any]:
    """What ``ctctool info`` shows: everything but the weights, plus their size. The file gets
    the checks every loader makes, so ``info`` never shows a model that ``decode`` would refuse."""
    path = resolve_model(path)
    payload = read_model_file(path)
    codec, extractor, model_config = model_parts(path, payload)
    weights = payload["state_dict"]
    check_weights(path, model_config, weights)
    parameters = sum(t.numel() for k, t in weights.items()
                     if isinstance(t, torch.Tensor) and "running_" not in k and "num_batches" not in k)
    return {
        "path": path,
        "file_bytes": os.path.getsize(path),
        "format_version": payload.get("format_version"),
        "ctctool_version": payload.get("ctctool_version"),
        "modality": extractor.modality,
        "alphabet_size": len(codec.labels),
        "alphabet": "".join(codec.labels),
        "normalization": codec.normalization,
        "features": payload["features"],
        "model_config": payload["model_config"],
        "time_stride": {"input_frames_per_output": model_config.time_stride},
        "parameters": parameters,
        "training": payload.get("training", {}),
    }
