"""Kaldi data directories and Hugging Face folders become manifests that train and decode
without conversion scripts; bad tables are errors naming file, line and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile
from typer.testing import CliRunner

from ctctool.cli import app
from ctctool.errors import ManifestError
from ctctool.features import default_extractor
from ctctool.layouts import import_hf, import_kaldi
from ctctool.manifest import read_manifest

SPEECH = Path(__file__).resolve().parent.parent / "data" / "speech"


def _kaldi_dir(tmp_path: Path, count: int = 6, segments: bool = False) -> Path:
    items = read_manifest(SPEECH / "val.jsonl")[:count]
    folder = tmp_path / "data" / "train"
    (folder / "wav").mkdir(parents=True)
    scp, text, utt2spk, segs = [], [], [], []
    for n, item in enumerate(items):
        name = f"rec{n}.flac"
        shutil.copy(item.resolved_path, folder / "wav" / name)
        if segments:  # two utterances per recording: the first 0.2 s and the rest
            length = soundfile.info(folder / "wav" / name).duration
            scp.append(f"rec{n} wav/{name}")
            segs += [f"utt{n}a rec{n} 0.00 0.20", f"utt{n}b rec{n} 0.20 {length:.2f}"]
            text += [f"utt{n}a {item.text}", f"utt{n}b {item.text}"]
            utt2spk += [f"utt{n}a spk{n % 2}", f"utt{n}b spk{n % 2}"]
        else:
            scp.append(f"utt{n} wav/{name}")
            text.append(f"utt{n} {item.text}")
            utt2spk.append(f"utt{n} spk{n % 2}")
    (folder / "wav.scp").write_text("\n".join(scp) + "\n")
    (folder / "text").write_text("\n".join(text) + "\n")
    (folder / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    if segments:
        (folder / "segments").write_text("\n".join(segs) + "\n")
    return folder


def test_a_kaldi_dir_imports_and_its_clips_load(tmp_path):
    folder = _kaldi_dir(tmp_path)
    result = import_kaldi(str(folder))
    originals = read_manifest(SPEECH / "val.jsonl")[:6]
    assert [item.id for item in result.items] == [f"utt{n}" for n in range(6)]
    assert [item.text for item in result.items] == [item.text for item in originals]
    assert result.items[1].extra == {"speaker": "spk1"} and result.items[0].kind == "audio"
    features = default_extractor("audio").load(result.items[0])
    assert features.values.shape[0] == 64 and features.values.shape[1] > 10


def test_kaldi_segments_become_offsets_and_durations(tmp_path):
    result = import_kaldi(str(_kaldi_dir(tmp_path, count=3, segments=True)))
    assert [item.id for item in result.items] == ["utt0a", "utt0b", "utt1a", "utt1b", "utt2a", "utt2b"]
    first, second = result.items[:2]
    assert (first.offset, first.duration) == (0.0, pytest.approx(0.2))
    assert second.offset == pytest.approx(0.2) and second.path == first.path
    frames = default_extractor("audio").load(first).values.shape[1]
    assert 15 <= frames <= 25  # 0.2 s of 10 ms hops


def test_the_cli_imports_kaldi_and_trains_on_it_without_conversion(tmp_path):
    folder = _kaldi_dir(tmp_path, count=8)
    runner = CliRunner()
    out = tmp_path / "kaldi.jsonl"
    done = runner.invoke(app, ["manifest", "import", "kaldi", str(folder), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text().splitlines()[0])["speaker"] == "spk0"
    trained = runner.invoke(app, ["train", str(out), "-o", str(tmp_path / "m.pt"), "--max-steps", "2",
                                  "--batch-size", "4", "--hidden", "16", "--quiet", "--device", "cpu",
                                  "--run-dir", str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output


@pytest.mark.parametrize(("file", "content", "message"), [
    ("wav.scp", "utt0 sox wav/rec0.flac -t wav - |\n", r"wav.scp:1: path: utt0: a command pipe"),
    ("wav.scp", "utt0\n", r"wav.scp:1: expected 2 fields"),
    ("wav.scp", "utt0 wav/rec0.flac\nutt0 wav/rec1.flac\n", r"wav.scp:2: id: 'utt0' already listed at line 1"),
    ("segments", "utt0 nowhere 0 1\n", r"segments:1: recording: 'nowhere' is not in wav.scp"),
    ("segments", "utt0 utt0 2 1\n", r"segments:1: end: need 0 <= start < end"),
])
def test_bad_kaldi_tables_name_file_line_and_field(tmp_path, file, content, message):
    folder = _kaldi_dir(tmp_path, count=2)
    (folder / file).write_text(content)
    with pytest.raises(ManifestError, match=message):
        import_kaldi(str(folder))


def test_utterances_without_text_are_reported_not_dropped_silently(tmp_path):
    folder = _kaldi_dir(tmp_path, count=3)
    (folder / "text").write_text("utt0 one two\nutt2 three\n")
    result = import_kaldi(str(folder))
    assert [item.id for item in result.items] == ["utt0", "utt2"]
    assert len(result.skipped) == 1 and "utterance utt1 has no line in text" in result.skipped[0]


@pytest.mark.parametrize("layout", ["jsonl", "csv"])
def test_a_hugging_face_audiofolder_imports(tmp_path, layout):
    items = read_manifest(SPEECH / "val.jsonl")[:4]
    for n, item in enumerate(items):
        shutil.copy(item.resolved_path, tmp_path / f"clip{n}.flac")
    if layout == "jsonl":
        (tmp_path / "metadata.jsonl").write_text("".join(
            json.dumps({"file_name": f"clip{n}.flac", "transcription": item.text, "speaker_id": n}) + "\n"
            for n, item in enumerate(items)))
    else:
        (tmp_path / "metadata.csv").write_text("file_name,sentence,accent\n" + "".join(
            f"clip{n}.flac,{item.text},us\n" for n, item in enumerate(items)))
    result = import_hf(str(tmp_path))
    assert [item.text for item in result.items] == [item.text for item in items]
    assert result.items[0].kind == "audio" and default_extractor("audio").load(result.items[0]).values.size
    assert set(result.items[0].extra) == ({"speaker_id"} if layout == "jsonl" else {"accent"})


def test_hugging_face_metadata_problems_are_named(tmp_path):
    with pytest.raises(ManifestError, match="no metadata.jsonl or metadata.csv"):
        import_hf(str(tmp_path))
    (tmp_path / "metadata.csv").write_text("file_name,notes\na.png,x\n")
    with pytest.raises(ManifestError, match=r"metadata.csv:1: text: no transcript column \(have: file_name, notes\)"):
        import_hf(str(tmp_path))
    assert import_hf(str(tmp_path), text_column="notes").items[0].text == "x"
