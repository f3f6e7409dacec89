"""``ctctool export``: a model as an ONNX graph that runs without PyTorch.

The graph takes ``features`` float32 [batch, 1, feature_dim, frames] and ``lengths`` int64
[batch] (frames of each input before padding) and gives ``log_probs`` float32 [batch,
out_frames, classes] (natural log, blank = 0) and ``out_lengths`` int64 [batch]; batch and
time are dynamic axes. The padding is handled inside the graph as in the PyTorch network
(masked after each conv block, ``sequence_lens`` for the LSTM), so an input gives the same
scores whatever it is batched with. Everything a decoder needs besides the graph (codec,
feature extraction settings, network config, training summary) is JSON in the model's
metadata under the key ``ctctool``: one file carries the whole model.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from typing import Any

import numpy as np

from .checkpoint import LoadedModel, min_reader_version
from .errors import ConfigError, OptionError
from .fileio import atomic_write, file_sha256
from .version import __version__

ONNX_FORMAT = "ctctool-onnx"
ONNX_FORMAT_VERSION = 5  # the newest this ctctool reads and writes; 2 adds image deslant, 3 centre
# normalization, 4 its paper-relative ink (center_ink "relative"), 5 audio's band_std_floor
# An older reader refuses a newer format_version. The ONNX metadata gained each feature step at
# the same version number as the model file, so an export says the model's min_reader_version
# (checkpoint.min_reader_version): 2 for deslant, 3 for centre normalization, 4 for centre
# normalization with paper-relative ink, 5 for audio with a band floor, otherwise 1.
METADATA_KEY = "ctctool"
INPUT_NAMES = ("features", "lengths")
OUTPUT_NAMES = ("log_probs", "out_lengths")
DEFAULT_OPSET = 17  # ONNX 1.12+ runtimes (onnxruntime >= 1.12) read it
# The legacy TorchScript-based exporter: it maps the packed bidirectional LSTM onto ONNX's
# LSTM with sequence_lens, which the dynamo exporter in torch 2.13 does not.
_EXTRA_HINT = "pip install 'ctctool[onnx]'"


def onnx_metadata(model: LoadedModel, source_sha256: str | None = None) -> dict[str, Any]:
    """The JSON stored beside the graph: what ``load_onnx_model`` needs to rebuild the pipeline."""
    from .model import count_parameters

    training = dict(model.metadata)
    return {
        "format": ONNX_FORMAT,
        "format_version": min_reader_version(model.extractor.config_dict()),
        "ctctool_version": __version__,
        "modality": model.modality,
        "codec": model.codec.to_dict(),
        "features": model.extractor.config_dict(),
        "model_config": model.model_config.to_dict(),
        "time_stride": {"input_frames_per_output": model.time_stride},
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
        "source": {"path": os.path.basename(model.path), "sha256": source_sha256,
                   "parameters": count_parameters(model.network)},
        "training": json.loads(json.dumps(training, default=str)),  # plain JSON values only
    }


def export_onnx(model: LoadedModel, output: str, *, opset: int = DEFAULT_OPSET, check: bool = True,
                seed: int = 0) -> dict[str, Any]:
    """Write ``model`` (a loaded PyTorch model) to ``output`` as ONNX; with ``check`` (needs
    onnxruntime) run both on a random padded batch and refuse a graph whose log-probabilities
    differ by more than 1e-4. Returns a report: file size, opset, the largest difference."""
    import io

    import torch

    try:
        import onnx
    except ImportError:
        raise ConfigError(f"ctctool export needs the onnx package: {_EXTRA_HINT}") from None
    if not 11 <= opset <= 21:
        raise OptionError(f"--opset must be 11..21, got {opset}")
    network = model.network.to("cpu").eval()
    generator = torch.Generator().manual_seed(seed)
    feature_dim = model.model_config.feature_dim
    stride = model.time_stride
    # Three inputs of different lengths: the traced graph must keep the padding logic.
    lengths = torch.tensor([48 * stride, 31 * stride + 1, 9 * stride], dtype=torch.int64)
    features = torch.rand(3, 1, feature_dim, int(lengths.max()), generator=generator)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _native_stderr_silenced():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and RNN-batch notices
        torch.onnx.export(
            network, (features, lengths), buffer, dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes={"features": {0: "batch", 3: "frames"}, "lengths": {0: "batch"},
                          "log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"}})
    graph = onnx.load_from_string(buffer.getvalue())
    source_sha = file_sha256(model.path) if os.path.isfile(model.path) else None
    entry = graph.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(onnx_metadata(model, source_sha), ensure_ascii=False)
    graph.producer_name = "ctctool"
    graph.producer_version = __version__
    onnx.checker.check_model(graph)
    data = graph.SerializeToString()
    report: dict[str, Any] = {"path": output, "bytes": len(data), "opset": opset, "max_abs_diff": None}
    if check:
        report["max_abs_diff"] = _compare(network, data, generator, feature_dim, stride)
        if report["max_abs_diff"] > 1e-4:
            raise ConfigError(f"{output}: not written: the ONNX graph's log-probabilities differ from the "
                              f"PyTorch network's by {report['max_abs_diff']:.2g} (> 1e-4)")
    with atomic_write(output) as handle:
        handle.write(data)
    return report


@contextlib.contextmanager
def _native_stderr_silenced():
    """Drop what C++ code writes to file descriptor 2 meanwhile: the legacy exporter logs
    shape-inference notices about PackPadded there that say nothing to a user (the graph is
    checked against PyTorch afterwards), and Python's warnings filters cannot reach them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _compare(network, data: bytes, generator, feature_dim: int, stride: int) -> float:
    """Largest |difference| of log-probabilities over the valid frames of a fresh padded batch
    (other lengths than the traced one, so dynamic shapes are exercised too)."""
    import torch

    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"checking the exported graph needs onnxruntime: {_EXTRA_HINT} (or --no-check)") from None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    lengths = torch.tensor([5 * stride, 70 * stride + 3, 23 * stride, 70 * stride], dtype=torch.int64)
    features = torch.rand(4, 1, feature_dim, int(lengths.max()), generator=generator) * 2 - 0.5
    with torch.inference_mode():
        expected, expected_lengths = network(features, lengths)
    got, got_lengths = session.run(list(OUTPUT_NAMES), {"features": features.numpy(), "lengths": lengths.numpy()})
    if not np.array_equal(got_lengths, expected_lengths.numpy()):
        return float("inf")
    return max(float(np.abs(got[row, :n] - expected[row, :n].numpy()).max())
               for row, n in enumerate(expected_lengths.tolist()))
