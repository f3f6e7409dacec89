"""Reading inputs in worker processes: the same results in the same order, errors as rows,
bounded read-ahead."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ctctool.features import default_extractor
from ctctool.manifest import read_manifest
from ctctool.reading import default_workers, feature_windows

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_decode_with_reader_processes_gives_the_one_process_output_in_order(tmp_path):
    from ctctool.cli import app

    lines = sorted((REPO / "data/ocr/lines").glob("test-000*.png"))[:40]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    paths = [str(p) for p in lines[:20]] + [str(broken)] + [str(p) for p in lines[20:]]
    stdin = "\n".join(paths) + "\n"
    outputs = {}
    for workers in ("0", "2"):
        result = runner.invoke(app, ["decode", "latin-print", "-", "--format", "jsonl", "--keep-going",
                                     "--workers", workers, "--batch-size", "4"], input=stdin)
        assert result.exit_code == 3, result.output  # one input failed, every other one decoded
        outputs[workers] = [json.loads(line) for line in result.stdout.splitlines()]
    assert outputs["0"] == outputs["2"]
    assert [row["path"] for row in outputs["2"]] == paths
    assert "error" in outputs["2"][20] and all("text" in row for i, row in enumerate(outputs["2"]) if i != 20)


def test_reader_processes_read_at_most_two_windows_ahead():
    items = read_manifest(str(REPO / "data/ocr/test.jsonl"))
    taken = []

    def source():
        for item in items:
            taken.append(item)
            yield item

    windows = feature_windows(default_extractor("image"), source(), 10, workers=2)
    first_items, first_features = next(windows)
    assert [item.id for item in first_items] == [item.id for item in items[:10]]
    assert len(first_features) == 10 and len(taken) <= 20  # the current window and the next one
    rest = list(windows)
    assert sum(len(window) for window, _ in rest) == len(items) - 10 and len(taken) == len(items)


def test_errors_cross_process_boundaries_intact():
    """A reader process hands errors back by value: one the parent could not unpickle would
    kill the pool's result thread and hang the run (it did, before ItemError pickled)."""
    import pickle

    from ctctool.errors import AlignmentError, FeatureError, ItemError

    for error in (ItemError("m.jsonl:3", "path: gone"), FeatureError("a.png", "not an image"),
                  AlignmentError("x", "too short")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and (again.where, again.reason, str(again)) == \
            (error.where, error.reason, str(error))


def test_default_workers_leave_small_machines_alone(monkeypatch):
    import os

    for cores, expected in ((1, 0), (2, 0), (4, 1), (8, 2), (64, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert default_workers() == expected
