"""Self-contained model files: plain Python values and tensors, safe to load from strangers.

A model file is a dict written by ``torch.save`` that ``torch.load(weights_only=True)`` reads
back: no pickled classes, so loading cannot run code. It carries everything needed to use
the model. Resume state (optimizer, scheduler, RNG, step) lives in the run folder instead.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import torch

from .codec import Codec
from .errors import CheckpointError
from .features import FeatureExtractor, extractor_from_config
from .model import CTCRecognizer, ModelConfig
from .version import __version__

FORMAT_NAME = "ctctool-model"
FORMAT_VERSION = 1  # bump when the layout changes; readers refuse files newer than they know
MIN_READER_VERSION = 1  # oldest reader format version that can use files written now


def atomic_torch_save(obj: Any, path: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a model file is an ordinary file
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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

    @property
    def time_stride(self) -> int:
        return self.model_config.time_stride


def model_payload(network: torch.nn.Module, codec: Codec, extractor: FeatureExtractor,
                  model_config: ModelConfig, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "min_reader_version": MIN_READER_VERSION,
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
    atomic_torch_save(model_payload(network, codec, extractor, model_config, metadata), path)


def read_model_file(path: str) -> dict[str, Any]:
    """The raw payload, checked for format and version; never unpickles code."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, foreign pickle, truncated file...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a ctctool model file or it is corrupt ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a ctctool model file (no '{FORMAT_NAME}' format tag)")
    if payload.get("min_reader_version", 1) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by ctctool {payload.get('ctctool_version')} in model format "
            f"{payload.get('format_version')}; this ctctool {__version__} reads format {FORMAT_VERSION}: upgrade ctctool"
        )
    for key in ("codec", "features", "model_config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: model file lacks '{key}'")
    return payload


def load_model(path: str, device: str | torch.device = "cpu") -> LoadedModel:
    payload = read_model_file(path)
    try:
        codec = Codec.from_dict(payload["codec"])
        extractor = extractor_from_config(payload["features"])
        model_config = ModelConfig.from_dict(payload["model_config"])
        network = CTCRecognizer(model_config)
        network.load_state_dict(payload["state_dict"])
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: model file is inconsistent: {exc}") from None
    if model_config.num_classes != codec.size:
        raise CheckpointError(f"{path}: network has {model_config.num_classes} outputs but the codec {codec.size}")
    network.to(device).eval()
    return LoadedModel(
        network=network,
        codec=codec,
        extractor=extractor,
        model_config=model_config,
        modality=payload.get("modality", extractor.modality),
        metadata=dict(payload.get("training", {})),
        path=path,
    )


def describe_model(path: str) -> dict[str, Any]:
    """What ``ctctool info`` shows: everything but the weights, plus their size."""
    payload = read_model_file(path)
    weights = payload["state_dict"]
    parameters = sum(t.numel() for k, t in weights.items() if "running_" not in k and "num_batches" not in k)
    return {
        "path": path,
        "file_bytes": os.path.getsize(path),
        "format_version": payload.get("format_version"),
        "ctctool_version": payload.get("ctctool_version"),
        "modality": payload.get("modality"),
        "alphabet_size": len(payload["codec"]["labels"]),
        "alphabet": "".join(payload["codec"]["labels"]),
        "normalization": payload["codec"].get("normalization"),
        "features": payload["features"],
        "model_config": payload["model_config"],
        "time_stride": payload.get("time_stride"),
        "parameters": parameters,
        "training": payload.get("training", {}),
    }
