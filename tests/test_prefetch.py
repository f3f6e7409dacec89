"""Reading batches ahead on a thread (ctctool.prefetch): same items in the same order, errors
where they happened, a thread that stops when left, and training that is bit for bit the same."""

from __future__ import annotations

import itertools
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from stop_at import StopAt
from test_train_checkpoint import run, run_until_interrupt

import ctctool.train as train_module
from ctctool.data import TrainingDataset
from ctctool.prefetch import DEPTH, prefetch_depth, read_ahead
from ctctool.train import TrainConfig


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.integers(), max_size=40), depth=st.integers(0, 4))
def test_items_come_out_in_order_and_all_of_them(items, depth):
    with read_ahead(items, depth) as ahead:
        assert list(ahead) == items
        assert next(ahead, "end") == "end"  # stays exhausted


@pytest.mark.parametrize("depth", [1, 2])
def test_an_error_in_the_source_is_raised_where_its_item_would_have_come(depth):
    def source():
        yield from range(5)
        raise ValueError("line 6 is cut off")

    with read_ahead(source(), depth) as ahead:
        assert [next(ahead) for _ in range(5)] == list(range(5))
        with pytest.raises(ValueError, match="line 6 is cut off"):
            next(ahead)
        assert next(ahead, "end") == "end"


def test_leaving_early_stops_the_thread_even_on_an_endless_source():
    produced = []

    def endless():
        for number in itertools.count():
            produced.append(number)
            yield number

    with read_ahead(endless(), 2) as ahead:
        assert next(ahead) == 0
        thread = ahead._thread
        assert thread.is_alive() and thread is not threading.current_thread()
    assert not thread.is_alive()
    assert len(produced) <= 1 + 2 + 1  # the item taken, a full queue and the one blocked on it


def test_read_ahead_is_used_only_where_a_core_is_left_free_and_no_workers_load():
    assert prefetch_depth(workers=0, torch_threads=1, cores=2) == DEPTH
    assert prefetch_depth(workers=0, torch_threads=2, cores=2) == 0  # OpenMP's team fills the cores
    assert prefetch_depth(workers=0, torch_threads=4, cores=2) == 0
    assert prefetch_depth(workers=2, torch_threads=1, cores=16) == 0  # worker processes load already
    assert prefetch_depth(workers=0, torch_threads=8, cores=16) == DEPTH


def _loading_threads(monkeypatch, depth):
    """Force the read-ahead depth and record the names of the threads that load items."""
    names = set()
    original = TrainingDataset.__getitem__

    def getitem(self, key):
        names.add(threading.current_thread().name)
        return original(self, key)

    monkeypatch.setattr(TrainingDataset, "__getitem__", getitem)
    monkeypatch.setattr(train_module, "prefetch_depth", lambda *args: depth)
    return names


def test_training_with_batches_read_ahead_equals_training_without(tiny_data, tmp_path, monkeypatch):
    """Default augmentation at full strength from step 1 (each item draws from its own seed),
    so any batch built from the wrong seed or in the wrong order would change the weights."""
    config = TrainConfig(max_steps=8, batch_size=8, seed=11, eval_every=4, augment_warmup=0.0)
    results = {}
    for depth in (0, DEPTH):
        names = _loading_threads(monkeypatch, depth)
        result = run(tiny_data, tmp_path / str(depth) / "m.pt", config)
        assert names == ({"ctctool-prefetch"} if depth else {threading.current_thread().name})
        results[depth] = (result, torch.load(tmp_path / str(depth) / "run" / "resume.pt", weights_only=True))
    (inline, inline_state), (ahead, ahead_state) = results[0], results[DEPTH]
    assert [h["loss"] for h in inline.history] == [h["loss"] for h in ahead.history]
    for key in inline_state["model"]:
        assert torch.equal(inline_state["model"][key], ahead_state["model"][key]), key
    assert not [t for t in threading.enumerate() if t.name == "ctctool-prefetch"]


def test_a_run_interrupted_while_reading_ahead_resumes_bit_exact(tiny_data, tmp_path, monkeypatch):
    """Killed at step 10 with batches read ahead (resume state from step 8, mid-epoch), then
    resumed: the same weights as the uninterrupted run without read-ahead."""
    config = TrainConfig(max_steps=16, batch_size=8, seed=5, eval_every=4, augment_warmup=0.0)
    _loading_threads(monkeypatch, 0)
    run(tiny_data, tmp_path / "a" / "m.pt", config)
    _loading_threads(monkeypatch, DEPTH)
    (tmp_path / "c").mkdir()
    assert run_until_interrupt(tiny_data, tmp_path / "c" / "m.pt", config, monitor=StopAt(10)) is None
    assert not [t for t in threading.enumerate() if t.name == "ctctool-prefetch"]
    run(tiny_data, tmp_path / "c" / "m.pt", config, resume=True)
    a = torch.load(tmp_path / "a" / "run" / "resume.pt", weights_only=True)
    c = torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)
    assert all(torch.equal(a["model"][key], c["model"][key]) for key in a["model"])
