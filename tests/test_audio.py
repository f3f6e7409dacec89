"""Audio front end: reading, resampling, log-mel, segments, bad files; audio through the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from ctctool.checkpoint import read_model_file
from ctctool.cli import app
from ctctool.errors import ConfigError, FeatureError
from ctctool.features import default_extractor
from ctctool.features.audio import (
    DEFAULT_BAND_STD_FLOOR,
    AudioFeatureConfig,
    AudioFeatures,
    _hz_to_mel,
    _mel_to_hz,
    read_clip,
)
from ctctool.features.resample import resample
from ctctool.manifest import ManifestItem

RATE = 16000


def clip(tmp_path, name, samples, rate=RATE, subtype=None, **fields):
    soundfile.write(tmp_path / name, samples, rate, subtype=subtype)
    return ManifestItem(path=name, root=str(tmp_path), kind="audio", id=name, source=f"m.jsonl:{name}", **fields)


def tone(freq, seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3500.0])
def test_pure_tone_lands_in_its_mel_band(freq):
    config = AudioFeatureConfig()
    values = AudioFeatures(config).log_mel(tone(freq), normalize=False)
    assert values.shape == (config.n_mels, 1 + RATE // config.hop_samples)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(config.f_min), _hz_to_mel(RATE / 2), config.n_mels + 2))
    expected = int(np.argmin(np.abs(edges[1:-1] - freq)))  # band whose centre is nearest the tone
    assert abs(int(values[:, 10:-10].mean(axis=1).argmax()) - expected) <= 1


def test_resampling_round_trip_keeps_a_tone():
    original = tone(440.0, rate=8000)
    there = resample(original, 8000, 16000)
    back = resample(there, 16000, 8000)
    assert len(there) == 16000 and len(back) == 8000
    assert np.abs(back[200:-200] - original[200:-200]).max() < 1e-3
    assert np.abs(there[400:-400] - tone(440.0)[400:-400]).max() < 1e-3
    alias = resample(tone(7000.0), 16000, 8000)  # above the new Nyquist: removed, not folded
    assert np.sqrt(np.mean(alias[200:-200] ** 2)) < 1e-3


def test_band_floor_keeps_the_bands_an_8_khz_clip_lacks_quiet():
    """Upsampled 8 kHz audio has nothing above 4 kHz but resampling residue: normalized per band
    without a floor, that residue is scaled up to unit variance, noise no full-band clip shows.
    With the floor those bands stay near 0, and the bands with speech in them are unchanged."""
    t = np.arange(8000) / 8000
    # two tones, swelling and fading 4 times a second, from silence to silence as speech is
    narrow = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t)) * np.sin(np.pi * 4 * t) ** 2
    samples = resample(narrow.astype(np.float32), 8000, RATE)
    plain = AudioFeatures(AudioFeatureConfig()).log_mel(samples)
    floored = AudioFeatures(AudioFeatureConfig(band_std_floor=DEFAULT_BAND_STD_FLOOR)).log_mel(samples)
    centres = _mel_to_hz(np.linspace(_hz_to_mel(20.0), _hz_to_mel(RATE / 2), plain.shape[0] + 2))[1:-1]
    empty = centres > 4300
    assert plain[empty].std(axis=1).max() > 0.5  # residue blown up (where it is not below the power floor)
    assert np.abs(floored[empty]).max() < 0.05
    # bands that vary by more than the floor (the tones' among them) are scaled as before
    varied = AudioFeatures(AudioFeatureConfig()).log_mel(samples, normalize=False).std(axis=1) > DEFAULT_BAND_STD_FLOOR
    assert varied[np.abs(centres - 300).argmin()] and varied[np.abs(centres - 2500).argmin()]
    assert np.allclose(floored[varied], plain[varied], atol=1e-5)


@pytest.mark.parametrize("floor", [-0.5, 10.5, float("nan"), float("inf")])
def test_band_floor_out_of_range_is_a_config_error(floor):
    with pytest.raises(ConfigError, match="band_std_floor"):  # range, or not a finite number
        AudioFeatureConfig(band_std_floor=floor)


def test_offset_and_duration_read_exactly_those_samples(tmp_path):
    ramp = (np.arange(RATE * 2) / (RATE * 2)).astype(np.float32)
    item = clip(tmp_path, "ramp.wav", ramp, subtype="FLOAT", offset=0.25, duration=0.5)
    samples, offset, length = read_clip(item, RATE)
    assert offset == 0.25 and length == 2.0
    assert np.array_equal(samples, ramp[4000:12000])
    features = AudioFeatures().load(item)
    assert features.axis.unit == "s" and features.axis.origin == 0.25 and features.axis.extent == 0.75
    assert features.values.shape[1] == 1 + 8000 // 160


def test_stereo_mixes_to_mono_and_channel_selects(tmp_path):
    stereo = np.stack([tone(300.0), np.zeros(RATE, np.float32)], axis=1)
    mixed, _, _ = read_clip(clip(tmp_path, "s.wav", stereo, subtype="FLOAT"), RATE)
    assert np.allclose(mixed, stereo.mean(axis=1), atol=1e-6)
    second, _, _ = read_clip(clip(tmp_path, "s2.wav", stereo, subtype="FLOAT", channel=1), RATE)
    assert np.abs(second).max() == 0
    with pytest.raises(FeatureError, match=r"channel: 2 is not a channel of .* \(it has 2: 0-1\)"):
        read_clip(clip(tmp_path, "s3.wav", stereo, channel=2), RATE)


def test_bad_audio_gives_clear_per_item_errors(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"RIFF....WAVEjunkjunk")
    soundfile.write(tmp_path / "full.wav", tone(200.0, 2.0), RATE)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "trunc.wav").write_bytes(data[: len(data) // 3])
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), RATE)
    nan = tone(200.0)
    nan[100] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, RATE, subtype="FLOAT")
    cases = {"garbage.wav": "cannot read audio", "trunc.wav": "truncated", "empty.wav": "no samples",
             "nan.wav": "NaN", "missing.wav": "no such file"}
    for name, message in cases.items():
        item = ManifestItem(path=name, root=str(tmp_path), kind="audio", source=f"m.jsonl:{name}")
        with pytest.raises(FeatureError, match=message) as info:
            AudioFeatures().load(item)
        assert str(info.value).startswith(f"m.jsonl:{name}: ")
    over = ManifestItem(path="full.wav", root=str(tmp_path), kind="audio", offset=1.5, duration=1.0, source="m:1")
    with pytest.raises(FeatureError, match="duration: 1.5 \\+ 1.0 s runs past the end"):
        AudioFeatures().load(over)


def test_augmentation_is_seeded_and_keeps_shape(tmp_path):
    import random

    item = clip(tmp_path, "t.wav", tone(500.0))
    a = AudioFeatures().load(item, random.Random(3)).values
    b = AudioFeatures().load(item, random.Random(3)).values
    assert np.array_equal(a, b) and a.shape[0] == 64
    assert default_extractor("audio").config_dict()["hop_ms"] == 10.0


# ---------------------------------------------------------------- audio through the commands

SPEECH = __import__("pathlib").Path(__file__).resolve().parent.parent / "data" / "speech"
BUNDLED_MODEL = SPEECH / "digits-small.pt"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def speech_onset_and_offset(samples: np.ndarray) -> tuple[int, int]:
    """First and last sample where a 2.5 ms RMS envelope passes 2% of its peak (weak fricatives
    like the "th" of "three" count as speech)."""
    envelope = np.sqrt(np.convolve(samples.astype(np.float64) ** 2, np.ones(40) / 40, mode="same"))
    loud = np.flatnonzero(envelope > 0.02 * envelope.max())
    return int(loud[0]), int(loud[-1]) + 1


def test_word_starts_align_within_two_frames_of_the_truth(tmp_path):
    """Concatenate bundled one-word clips with known silences; align; compare word starts."""
    from ctctool.manifest import read_manifest

    singles = [i for i in read_manifest(SPEECH / "val.jsonl") if " " not in i.text][:9]
    assert len(singles) >= 6
    rng = np.random.default_rng(0)
    for group in range(3):
        words, pieces, starts, cursor = [], [], [], 0
        for item in singles[group * 3: group * 3 + 3]:
            samples, _, _ = read_clip(item, RATE)
            onset, offset = speech_onset_and_offset(samples)
            gap = np.zeros(int(RATE * rng.uniform(0.25, 0.5)), np.float32)
            pieces += [gap, samples[onset:offset]]
            cursor += len(gap)
            starts.append(cursor / RATE)
            cursor += offset - onset
            words.append(item.text)
        pieces.append(np.zeros(RATE // 4, np.float32))
        soundfile.write(tmp_path / f"joined{group}.wav", np.concatenate(pieces), RATE, subtype="FLOAT")
        (tmp_path / f"m{group}.jsonl").write_text(json.dumps({"path": f"joined{group}.wav", "text": " ".join(words)})
                                                  + "\n", encoding="utf-8")
        result = invoke("align", BUNDLED_MODEL, tmp_path / f"m{group}.jsonl", "--format", "jsonl")
        assert result.exit_code == 0, result.stderr
        row = json.loads(result.stdout)
        frame = 0.04  # seconds per CTC frame: 10 ms hops x stride 4
        assert [w["token"] for w in row["words"]] == words
        for word, truth in zip(row["words"], starts):
            assert abs(word["start"] - truth) <= 2 * frame, (word, truth)


def test_audio_decode_align_formats(tmp_path):
    clip_path = SPEECH / "clips" / "val-00000.flac"
    text = invoke("decode", BUNDLED_MODEL, clip_path)
    assert text.exit_code == 0 and text.stdout.strip()
    rows = [json.loads(line) for line in invoke("decode", BUNDLED_MODEL, clip_path, "--format", "jsonl").stdout.splitlines()]
    assert rows[0]["unit"] == "s" and all(0 <= c["start"] <= c["end"] <= 3 for c in rows[0]["chars"])
    manifest = tmp_path / "two.jsonl"
    manifest.write_text("".join(json.dumps({"path": str(SPEECH / "clips" / f"val-0000{i}.flac"), "id": f"c{i}"}) + "\n"
                                for i in (1, 0)), encoding="utf-8")
    ctm = invoke("align", BUNDLED_MODEL, manifest, "--format", "ctm")
    assert ctm.exit_code == 0, ctm.stderr
    fields = [line.split() for line in ctm.stdout.splitlines()]
    assert [f[0] for f in fields] == sorted(f[0] for f in fields) and all(f[1] == "1" for f in fields)
    assert all(float(f[2]) >= 0 and float(f[3]) >= 0 and 0 <= float(f[5]) <= 1 for f in fields)
    tsv = invoke("align", BUNDLED_MODEL, manifest, "--format", "tsv")
    assert tsv.stdout.splitlines()[0] == "id\tlevel\tstart_ms\tend_ms\ttoken\tconfidence"
    grids = invoke("align", BUNDLED_MODEL, manifest, "--format", "textgrid", "--out-dir", tmp_path / "tg",
                   "--png", tmp_path / "png")
    assert grids.exit_code == 0, grids.stderr
    grid = (tmp_path / "tg" / "c0.TextGrid").read_text(encoding="utf-8")
    assert grid.startswith('File type = "ooTextFile"') and 'name = "words"' in grid and 'name = "chars"' in grid
    assert (tmp_path / "png" / "c0.png").exists()
    hocr = invoke("align", BUNDLED_MODEL, manifest, "--format", "hocr")
    assert hocr.exit_code == 2 and "for image models" in hocr.stderr


def test_audio_training_skips_bad_clips_only_when_asked(tmp_path):
    (tmp_path / "clips").mkdir()
    records = [json.loads(line) for line in (SPEECH / "train.jsonl").read_text().splitlines()[:12]]
    for record in records:
        (tmp_path / record["path"]).write_bytes((SPEECH / record["path"]).read_bytes())
    (tmp_path / "clips" / "bad.flac").write_bytes(b"fLaC not really")
    records.insert(5, {"path": "clips/bad.flac", "text": "one"})
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    common = ["train", manifest, "-o", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--max-steps", 2,
              "--batch-size", 4, "--hidden", 16, "--channels", "8,8,8,8", "--device", "cpu"]
    stopped = invoke(*common)
    assert stopped.exit_code == 1 and f"{manifest}:6: path: cannot read audio" in stopped.stderr
    skipped = invoke(*common, "--skip-bad")
    assert skipped.exit_code == 0, skipped.stderr
    assert "skipped 1 unreadable training items" in skipped.stderr
    # a new model's bands have today's floor, and the file asks for a reader that applies it
    written = read_model_file(str(tmp_path / "m.pt"))
    assert written["features"]["band_std_floor"] == DEFAULT_BAND_STD_FLOOR and written["min_reader_version"] == 5
    # an interrupted run whose config.json predates the floor resumes without it, as it began
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    del config["features"]["band_std_floor"]
    config_path.write_text(json.dumps(config))
    resumed = invoke(*common[:7], 3, *common[8:], "--skip-bad", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    written = read_model_file(str(tmp_path / "m.pt"))
    assert written["features"].get("band_std_floor", 0.0) == 0.0 and written["min_reader_version"] == 1


def test_decode_gives_word_times_in_jsonl_and_ctm(tmp_path):
    clips = [SPEECH / "clips" / f"val-0000{i}.flac" for i in (1, 2)]
    rows = [json.loads(line) for line in invoke("decode", BUNDLED_MODEL, *clips, "--format", "jsonl").stdout.splitlines()]
    for row in rows:
        words = row["words"]
        assert [w["token"] for w in words] == row["text"].split()
        assert all(0 <= w["start"] < w["end"] <= 3 and 0 <= w["confidence"] <= 1 for w in words)
        assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))  # in order, not overlapping
        chars = [c for c in row["chars"] if c["token"] != " "]
        assert words[0]["start"] == chars[0]["start"] and words[-1]["end"] == chars[-1]["end"]
    ctm = invoke("decode", BUNDLED_MODEL, *clips, "--format", "ctm")
    assert ctm.exit_code == 0, ctm.stderr
    fields = [line.split() for line in ctm.stdout.splitlines()]
    assert [f[4] for f in fields] == [w["token"] for row in rows for w in row["words"]]
    assert all(float(f[3]) == pytest.approx(w["end"] - w["start"], abs=2e-3)
               for f, w in zip(fields, [w for row in rows for w in row["words"]]))
    image = invoke("decode", "latin-print", SPEECH.parent / "ocr/lines/test-00000.png", "--format", "ctm")
    assert image.exit_code == 2 and "text, tsv, jsonl, page or alto for images" in image.stderr
