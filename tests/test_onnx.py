"""`ctctool export` and `--runtime onnx`: the same posteriors (within 1e-4) and the same text as
the PyTorch path on the bundled test sets, and exported files checked like model files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from ctctool.checkpoint import load_model  # noqa: E402
from ctctool.errors import CheckpointError, ConfigError  # noqa: E402
from ctctool.export import METADATA_KEY, export_onnx  # noqa: E402
from ctctool.inference import run_network  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.onnx_network import load_onnx_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ctctool"]


@pytest.fixture(scope="module")
def latin_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "latin-print.onnx"
    report = export_onnx(load_model("latin-print"), str(path))
    assert report["max_abs_diff"] < 1e-4 and path.stat().st_size == report["bytes"]
    return path


def _posteriors(model, items, batch_size):
    return [(out.item.id, out.log_probs) for out in run_network(model, items, batch_size=batch_size)]


def test_onnx_gives_the_pytorch_posteriors_on_the_bundled_test_lines(latin_onnx):
    """Every line of data/ocr/test.jsonl, batched 16 at a time (so padded), and each alone."""
    items = read_manifest(REPO / "data" / "ocr" / "test.jsonl")
    torch_model, onnx_model = load_model("latin-print"), load_onnx_model(str(latin_onnx))
    assert onnx_model.codec == torch_model.codec and onnx_model.model_config == torch_model.model_config
    expected = _posteriors(torch_model, items, 16)
    for batch_size in (16, 1):
        got = _posteriors(onnx_model, items if batch_size == 16 else items[:20], batch_size)
        for (got_id, got_lp), (want_id, want_lp) in zip(got, expected):
            assert got_id == want_id and got_lp.shape == want_lp.shape
            assert np.abs(got_lp - want_lp).max() < 1e-4, got_id


def test_decode_runtime_onnx_prints_the_same_text_as_pytorch(latin_onnx):
    test = str(REPO / "data" / "ocr" / "test.jsonl")
    runs = {}
    for name, args in (("torch", ["latin-print"]), ("onnx", [str(latin_onnx)]),
                       ("onnx-explicit", ["--runtime", "onnx", str(latin_onnx)])):
        done = subprocess.run([*CLI, "decode", *args, test, "--format", "jsonl", "--beam", "8"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        runs[name] = [(row["id"], row["text"]) for row in map(json.loads, done.stdout.splitlines())]
    assert len(runs["torch"]) == 200
    assert runs["onnx"] == runs["torch"] == runs["onnx-explicit"]


def test_an_audio_model_exports_with_its_mel_features(tmp_path):
    """Untrained weights are enough: the graph, the metadata and the feature path must agree."""
    import torch

    from ctctool.checkpoint import save_model
    from ctctool.codec import Codec
    from ctctool.features import default_extractor
    from ctctool.model import CTCRecognizer, ModelConfig

    torch.manual_seed(3)
    extractor = default_extractor("audio")
    codec = Codec.from_texts(["zero one two three four five six seven eight nine"])
    config = ModelConfig.for_modality("audio", extractor.feature_dim, codec.size)
    source = tmp_path / "speech.pt"
    save_model(str(source), CTCRecognizer(config), codec, extractor, config, {"note": "untrained"})
    export_onnx(load_model(str(source)), str(tmp_path / "speech.onnx"))
    onnx_model = load_onnx_model(str(tmp_path / "speech.onnx"))
    assert onnx_model.modality == "audio" and onnx_model.metadata == {"note": "untrained"}
    items = read_manifest(REPO / "data" / "speech" / "val.jsonl")[:12]
    for (_, want), (_, got) in zip(_posteriors(load_model(str(source)), items, 4), _posteriors(onnx_model, items, 4)):
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


def _rewrite_metadata(source: Path, target: Path, value: str | None) -> Path:
    graph = onnx.load(str(source))
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key != METADATA_KEY]
    del graph.metadata_props[:]
    for key, text in kept + ([(METADATA_KEY, value)] if value is not None else []):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, text
    onnx.save(graph, str(target))
    return target


def test_foreign_or_doctored_onnx_files_are_refused_by_name(latin_onnx, tmp_path):
    metadata = json.loads(next(p.value for p in onnx.load(str(latin_onnx)).metadata_props if p.key == METADATA_KEY))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    fewer_classes = dict(metadata, codec=dict(metadata["codec"], labels=metadata["codec"]["labels"][:-1]))
    cases = {
        garbage: "not a loadable ONNX model",
        _rewrite_metadata(latin_onnx, tmp_path / "bare.onnx", None): "not one from `ctctool export`",
        _rewrite_metadata(latin_onnx, tmp_path / "text.onnx", "{not json"): "not JSON",
        _rewrite_metadata(latin_onnx, tmp_path / "newer.onnx", json.dumps(dict(metadata, format_version=99))):
            "upgrade ctctool",
        _rewrite_metadata(latin_onnx, tmp_path / "codec.onnx", json.dumps(fewer_classes)): "outputs but the codec",
        _rewrite_metadata(latin_onnx, tmp_path / "stride.onnx",
                          json.dumps(dict(metadata, time_stride={"input_frames_per_output": 2}))):
            "time_stride.input_frames_per_output: 2 does not match",
        tmp_path / "missing.onnx": "no such ONNX model file",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as caught:
            load_onnx_model(str(path))
        assert str(path) in str(caught.value)
    done = subprocess.run([*CLI, "decode", str(tmp_path / "bare.onnx"), str(REPO / "data/ocr/lines/test-00000.png")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "bare.onnx" in done.stderr


def test_without_onnxruntime_the_error_says_what_to_install(monkeypatch, latin_onnx):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"ctctool\[onnx\]"):
        load_onnx_model(str(latin_onnx))


def test_info_describes_an_exported_model(latin_onnx):
    done = subprocess.run([*CLI, "info", str(latin_onnx), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["alphabet_size"] == 200 and info["modality"] == "image"
    assert info["inputs"]["features"][2] == 32 and info["outputs"]["log_probs"][-1] == 201
    assert len(info["source"]["sha256"]) == 64


def test_export_refuses_bad_options_and_keeps_no_partial_file(tmp_path):
    done = subprocess.run([*CLI, "export", "latin-print", "-o", str(tmp_path / "m.onnx"), "--opset", "5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--opset must be 11..21" in done.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_a_graph_that_disagrees_with_pytorch_is_not_written(monkeypatch, tmp_path):
    import ctctool.export as export

    monkeypatch.setattr(export, "_compare", lambda *args: 3e-3)  # as a broken exporter would give
    with pytest.raises(ConfigError, match="differ from the PyTorch network's by 0.003"):
        export_onnx(load_model("latin-print"), str(tmp_path / "m.onnx"))
    assert list(tmp_path.iterdir()) == []


def test_a_gpu_machine_with_the_cpu_onnxruntime_runs_onnx_models_on_the_cpu(latin_onnx, monkeypatch):
    """On an H200 with the plain onnxruntime, --device auto chose cuda and every .onnx model was
    refused ("this onnxruntime build has no CUDA provider"). auto now falls back to the CPU;
    an explicit --device cuda still says why it cannot."""
    import torch
    from typer.testing import CliRunner

    from ctctool.cli import app

    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has a CUDA provider")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as torch sees it
    line = str(REPO / "data/ocr/lines/test-00000.png")
    runner = CliRunner()
    for args in ([str(latin_onnx)], ["latin-print", "--runtime", "onnx"]):
        result = runner.invoke(app, ["decode", *args, line, "--format", "tsv"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1].split("\t")[2] == "while l pondered, weak and"
    refused = runner.invoke(app, ["decode", str(latin_onnx), line, "--device", "cuda"])
    assert refused.exit_code != 0 and "no CUDA provider" in refused.stderr
