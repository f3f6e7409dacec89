"""Long inputs run in overlapping windows (inference.py): the cuts tile the input exactly on the
CTC frame grid, and the stitched posteriors give the text of the whole-input run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ctctool.checkpoint import load_model
from ctctool.inference import Windows, run_network
from ctctool.manifest import ManifestItem, read_manifest
from ctctool.recognition import DecodeOptions, decode_items

REPO = Path(__file__).resolve().parent.parent


@given(frames=st.integers(1, 5000), window=st.integers(8, 900), stride=st.sampled_from([1, 2, 4, 8]))
def test_cuts_keep_every_ctc_frame_once_with_context_on_both_sides(frames, window, stride):
    windows = Windows.for_model(window, stride)
    usable = frames // stride * stride
    cuts = windows.cuts(frames)
    if usable == 0:
        assert cuts == []
        return
    assert cuts[0][2] == 0 and cuts[-1][3] == usable and cuts[-1][1] == frames
    for (start, end, keep_from, keep_to), following in zip(cuts, [*cuts[1:], None]):
        assert 0 <= start <= keep_from < keep_to <= end <= frames
        assert start % stride == keep_from % stride == keep_to % stride == 0
        assert end - start <= windows.window
        assert keep_from - start >= min(windows.context, keep_from)  # real input before the kept part...
        assert end - keep_to >= min(windows.context, frames - keep_to)  # ...and after it
        if following is not None:
            assert following[2] == keep_to  # kept parts tile the input


def _long_line(tmp_path: Path, count: int) -> tuple[ManifestItem, str]:
    """``count`` bundled test lines pasted side by side with a gap: one line a few thousand px wide."""
    records = [json.loads(line) for line in (REPO / "data/ocr/test.jsonl").read_text().splitlines()[:count]]
    images = [Image.open(REPO / "data/ocr" / r["path"]).convert("L") for r in records]
    height = max(image.height for image in images)
    scaled = [image.resize((image.width * height // image.height, height)) for image in images]
    canvas = Image.new("L", (sum(image.width + 40 for image in scaled), height), 255)
    x = 0
    for image in scaled:
        canvas.paste(image, (x, 0))
        x += image.width + 40
    path = tmp_path / "long.png"
    canvas.save(path)
    return ManifestItem(path=str(path), id="long"), " ".join(r["text"] for r in records)


def test_a_page_wide_line_in_windows_reads_as_the_whole_line(tmp_path):
    """Twelve lines pasted into one 3,500 px line, in windows of 1,600 px: the same characters as
    the whole-line run. Only word gaps may differ, at the pasted seams where even the whole-line
    run hesitates (a BiLSTM carries state further than any window's context, so posteriors near
    an ambiguous gap move a little)."""
    item, _ = _long_line(tmp_path, 12)
    model = load_model("latin-print")
    whole = next(run_network(replace(model, window_frames=0), [item]))
    windowed = next(run_network(replace(model, window_frames=1600), [item]))
    assert whole.log_probs.shape == windowed.log_probs.shape
    assert whole.log_probs.shape[0] * model.time_stride > 2 * 1600  # three windows really ran
    texts = [next(decode_items(replace(model, window_frames=w), [item], options=DecodeOptions(beam=8))).text
             for w in (0, 1600)]
    assert "".join(texts[0].split()) == "".join(texts[1].split()) and len(texts[0]) > 200
    close = np.abs(np.exp(whole.log_probs) - np.exp(windowed.log_probs)).max(axis=1) < 0.05
    assert close.mean() > 0.95  # most frames agree closely


def test_a_long_clip_in_windows_reads_as_the_whole_clip(tmp_path):
    items = read_manifest(REPO / "data/speech/val.jsonl")[:16]
    pieces, rate = [], None
    for item in items:
        samples, rate = soundfile.read(item.resolved_path, dtype="float32")
        pieces += [samples, np.zeros(int(0.3 * rate), dtype=np.float32)]
    path = tmp_path / "long.flac"
    soundfile.write(path, np.concatenate(pieces), rate)
    clip = ManifestItem(path=str(path), id="long")
    model = load_model(str(REPO / "data/speech/digits-small.pt"))
    texts = [next(decode_items(replace(model, window_frames=w), [clip], options=DecodeOptions(beam=8))).text
             for w in (0, 1000)]
    assert soundfile.info(path).duration > 1.5 * 10.0  # two 10 s windows
    assert texts[0] == texts[1] and len(texts[0].split()) >= 16


def test_inputs_within_the_window_are_untouched(tmp_path):
    item = read_manifest(REPO / "data/ocr/test.jsonl")[0]
    model = load_model("latin-print")
    default = next(run_network(model, [item])).log_probs
    never = next(run_network(replace(model, window_frames=0), [item])).log_probs
    assert np.array_equal(default, never)


@given(seconds=st.floats(0.01, 4.0), chunk=st.integers(1, 500), seed=st.integers(0, 2**16))
def test_log_mel_a_chunk_of_frames_at_a_time_is_the_whole_clips(seconds, chunk, seed):
    """Clips longer than CHUNK_FRAMES are transformed in chunks (an hour's spectrum took 1.5 GB):
    the features equal the whole-clip STFT's, the reflection at both ends included."""
    import ctctool.features.audio as audio

    samples = (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    features = audio.AudioFeatures()
    saved = audio.CHUNK_FRAMES
    try:
        audio.CHUNK_FRAMES = 10**9
        whole = features.log_mel(samples, normalize=False)
        audio.CHUNK_FRAMES = chunk
        chunked = features.log_mel(samples, normalize=False)
    finally:
        audio.CHUNK_FRAMES = saved
    assert chunked.shape == whole.shape == (features.config.n_mels, features.frames_for(len(samples)))
    assert np.abs(chunked - whole).max() <= 1e-5  # the mel product's blocking moves the last bits
