"""Reading inputs in worker processes: the same results in the same order, errors as rows,
bounded read-ahead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctctool.features import default_extractor
from ctctool.manifest import read_manifest
from ctctool.reading import feature_windows
from ctctool.threads import default_workers

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


def test_a_window_read_is_given_while_the_source_still_waits():
    """A pipe that stays open after a full window: the window's features come at once. Pulling
    the next window before giving the last one held them back until more lines came (seen on a
    16-core machine, where decode starts reader processes by default: no output in 120 s)."""
    import threading
    import time

    items = read_manifest(str(REPO / "data/ocr/test.jsonl"))[:8]
    more = threading.Event()
    threading.Timer(30, more.set).start()  # a broken reader still ends the test, after 30 s

    def source():
        yield from items[:4]
        more.wait()  # the writer has not sent the next lines yet
        yield from items[4:]

    started = time.perf_counter()
    windows = feature_windows(default_extractor("image"), source(), 4, workers=2)
    first_items, first_features = next(windows)
    assert time.perf_counter() - started < 20 and not more.is_set()
    assert [item.id for item in first_items] == [item.id for item in items[:4]] and len(first_features) == 4
    more.set()
    assert [item.id for window, _ in windows for item in window] == [item.id for item in items[4:]]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_source_error_comes_after_the_windows_read_before_it(workers):
    """Nothing already read is lost: the windows before a failing source line are given first."""
    items = read_manifest(str(REPO / "data/ocr/test.jsonl"))[:6]

    def source():
        yield from items
        raise ValueError("manifest.jsonl:7: bad line")

    given = []
    try:
        for window, _ in feature_windows(default_extractor("image"), source(), 4, workers=workers):
            given.extend(item.id for item in window)
    except ValueError as exc:
        assert "manifest.jsonl:7" in str(exc)
    else:
        raise AssertionError("the source's error was swallowed")
    assert given == [item.id for item in items]


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
