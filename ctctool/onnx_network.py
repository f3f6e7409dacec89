"""Running an exported model (``ctctool export``) with onnxruntime instead of PyTorch.

``load_onnx_model`` gives the same ``LoadedModel`` as ``checkpoint.load_model``, with an
``OnnxNetwork`` in place of the PyTorch network: the same feature extraction, batching and
beam search run around it. The metadata in the file comes from strangers like any model
file: it is checked with the same validators before anything is built.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .checkpoint import LoadedModel, model_parts
from .errors import CheckpointError, ConfigError
from .export import INPUT_NAMES, METADATA_KEY, ONNX_FORMAT, ONNX_FORMAT_VERSION, OUTPUT_NAMES
from .model import ModelConfig

MAX_METADATA_BYTES = 16 << 20  # the codec and configs are kilobytes; refuse a padded file's megabytes


class OnnxNetwork:
    """Callable like the PyTorch network: (features [B,1,F,T], lengths [B]) -> (log_probs, out_lengths),
    taking and giving torch tensors (converted without copies) so ``run_network`` serves both."""

    def __init__(self, session, path: str):
        self.session = session
        self.path = path

    def __call__(self, features, lengths):
        import torch

        log_probs, out_lengths = self.session.run(
            list(OUTPUT_NAMES), {"features": np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32),
                                 "lengths": lengths.cpu().numpy().astype(np.int64)})
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)

    def eval(self) -> OnnxNetwork:  # the graph is inference-only already
        return self

    def to(self, device) -> OnnxNetwork:
        return self


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("--runtime onnx needs onnxruntime: pip install 'ctctool[onnx]'") from None
    return onnxruntime


class StaleExportError(CheckpointError):
    """An ONNX file whose recorded source is not the model file it was expected to come from."""


def load_onnx_model(path: str, *, threads: int = 1, device: str = "cpu",
                    source_sha256: str | None = None) -> LoadedModel:
    """An exported ``.onnx`` model ready for ``run_network`` / ``decode_items``; ``threads`` is
    onnxruntime's intra-op thread count, ``device`` cpu or cuda (when the build has it).
    ``source_sha256``: the SHA-256 of the model file it must have been exported from."""
    ort = onnxruntime_module()
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such ONNX model file")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, expected an ONNX model file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError("--device cuda: this onnxruntime build has no CUDA provider (install "
                              "onnxruntime-gpu, or use --runtime torch)")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - protobuf parse errors, unsupported ops...
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise CheckpointError(f"{path}: not a loadable ONNX model ({first[:200]})") from None
    metadata = _read_metadata(path, session.get_modelmeta().custom_metadata_map)
    if source_sha256 is not None:
        source = metadata.get("source")
        if not isinstance(source, dict) or source.get("sha256") != source_sha256:
            raise StaleExportError(f"{path}: not exported from the model file it stands beside (stale export)")
    codec, extractor, model_config = model_parts(path, metadata)
    _check_signature(path, session, model_config)
    training = metadata.get("training", {})
    return LoadedModel(network=OnnxNetwork(session, path), codec=codec, extractor=extractor,
                       model_config=model_config, modality=extractor.modality,
                       metadata=dict(training) if isinstance(training, dict) else {}, path=path)


def describe_onnx_model(path: str) -> dict[str, Any]:
    """What ``ctctool info`` shows for an exported model: its metadata, file size and graph signature."""
    model = load_onnx_model(path)
    session = model.network.session
    metadata = _read_metadata(path, session.get_modelmeta().custom_metadata_map)
    return {
        "path": path,
        "file_bytes": os.path.getsize(path),
        "format": f"{metadata['format']} {metadata['format_version']}",
        "ctctool_version": metadata.get("ctctool_version"),
        "modality": model.modality,
        "alphabet_size": model.codec.size - 1,
        "alphabet": "".join(model.codec.labels),
        "features": metadata["features"],
        "model_config": metadata["model_config"],
        "inputs": {node.name: node.shape for node in session.get_inputs()},
        "outputs": {node.name: node.shape for node in session.get_outputs()},
        "source": metadata.get("source"),
        "training": model.metadata,
    }


def _read_metadata(path: str, custom: dict[str, str]) -> dict[str, Any]:
    text = custom.get(METADATA_KEY)
    if text is None:
        raise CheckpointError(f"{path}: an ONNX file but not one from `ctctool export` (no '{METADATA_KEY}' "
                              "metadata with the codec and feature settings)")
    if len(text) > MAX_METADATA_BYTES:
        raise CheckpointError(f"{path}: metadata.{METADATA_KEY}: {len(text)} bytes, more than any ctctool model holds")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata.{METADATA_KEY}: not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: metadata.{METADATA_KEY}: no '{ONNX_FORMAT}' format tag")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > ONNX_FORMAT_VERSION:
        raise CheckpointError(f"{path}: metadata.{METADATA_KEY}.format_version: {version!r}; this ctctool reads "
                              f"{ONNX_FORMAT_VERSION}: upgrade ctctool")
    for key in ("codec", "features", "model_config"):
        if not isinstance(metadata.get(key), dict):
            raise CheckpointError(f"{path}: metadata.{METADATA_KEY}.{key}: expected a mapping")
    return metadata


def _check_signature(path: str, session, model_config: ModelConfig) -> None:
    """The graph's inputs and outputs are the ones ``export`` writes, with the config's sizes."""
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    if set(inputs) != set(INPUT_NAMES) or not set(OUTPUT_NAMES) <= set(outputs):
        raise CheckpointError(f"{path}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)}; expected "
                              f"{list(INPUT_NAMES)} / {list(OUTPUT_NAMES)}")
    feature_shape = inputs["features"].shape
    if len(feature_shape) != 4 or feature_shape[2] != model_config.feature_dim:
        raise CheckpointError(f"{path}: input features has shape {feature_shape}; the metadata says "
                              f"[batch, 1, {model_config.feature_dim}, frames]")
    classes = outputs["log_probs"].shape[-1] if outputs["log_probs"].shape else None
    if classes != model_config.num_classes:
        raise CheckpointError(f"{path}: output log_probs has {classes} classes; the metadata's codec has "
                              f"{model_config.num_classes}")
