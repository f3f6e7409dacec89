"""The hostile corpus (tests/hostile.py) through every command that reads inputs.

For each kind of bad file, between two good inputs: decode, eval and align under --keep-going
exit 3, make the bad input one error row naming its file and manifest line, and still give
both good results; without --keep-going they stop with exit 1 and a one-line error, and the
result printed before it stays printed. manifest validate reports it; train stops on it with
one line (resume state kept) or skips and counts it under --skip-bad. Never a traceback.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hostile import Hostile, write_corpus
from typer.testing import CliRunner

from ctctool.cli import app

REPO = Path(__file__).resolve().parent.parent
SPEECH = REPO / "data" / "speech"
SPEECH_MODEL = SPEECH / "digits-small.pt"
runner = CliRunner()
# Written at import, since the cases parametrize the tests; removed when the process exits
# (pytest's tmp_path does not exist yet at collection).
CORPUS = Path(tempfile.mkdtemp(prefix="ctctool-hostile-"))
atexit.register(shutil.rmtree, CORPUS, ignore_errors=True)
CASES = write_corpus(CORPUS)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def corpus(tiny_data):
    folder = CORPUS
    image_good = [{"path": str(tiny_data["root"] / "lines" / f"val-0000{i}.png"),
                   "text": json.loads(tiny_data["val"].read_text().splitlines()[i])["text"]} for i in range(2)]
    audio_good = []
    for line in (SPEECH / "val.jsonl").read_text().splitlines()[:2]:
        record = json.loads(line)
        audio_good.append({"path": str(SPEECH / record["path"]), "text": record["text"]})
    return {"folder": folder, "image": image_good, "audio": audio_good}


def manifest_for(corpus, case: Hostile) -> Path:
    good = corpus[case.modality]
    records = [good[0], case.record, good[1]]
    path = corpus["folder"] / f"{case.kind}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def model_for(case: Hostile, tiny_model) -> Path:
    return tiny_model if case.modality == "image" else SPEECH_MODEL


def assert_one_line_error(stderr: str, case: Hostile, manifest: Path) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert f"{manifest}:2" in errors[0] and case.error in errors[0], errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_decode_reports_the_bad_item_and_loses_no_good_one(case, corpus, tiny_model):
    manifest = manifest_for(corpus, case)
    model = model_for(case, tiny_model)
    going = invoke("decode", model, manifest, "--format", "jsonl", "--keep-going")
    assert going.exit_code == 3, going.stderr
    rows = [json.loads(line) for line in going.stdout.splitlines()]
    assert [("error" in row) for row in rows] == [False, True, False]
    assert case.error in rows[1]["error"] and f"{manifest}:2" in rows[1]["error"]
    assert_one_line_error(going.stderr, case, manifest)
    stop = invoke("decode", model, manifest, "--format", "jsonl")
    assert stop.exit_code == 1
    assert [json.loads(line)["text"] for line in stop.stdout.splitlines()] == [rows[0]["text"]]  # kept
    assert_one_line_error(stop.stderr, case, manifest)


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_eval_and_align_keep_going(case, corpus, tiny_model):
    manifest = manifest_for(corpus, case)
    model = model_for(case, tiny_model)
    scored = invoke("eval", model, manifest, "--json", "--keep-going")
    assert scored.exit_code == 3
    summary = json.loads(scored.stdout)
    assert summary["lines"] == 2 and summary["failed"] == 1 and summary["cer"] is not None
    assert_one_line_error(scored.stderr, case, manifest)
    aligned = invoke("align", model, manifest, "--format", "jsonl", "--keep-going")
    assert aligned.exit_code == 3
    rows = [json.loads(line) for line in aligned.stdout.splitlines()]
    assert [("error" in row) for row in rows] == [False, True, False]
    assert rows[0]["words"] and rows[2]["words"]
    assert_one_line_error(aligned.stderr, case, manifest)


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_manifest_validate_reports_it(case, corpus):
    manifest = manifest_for(corpus, case)
    result = invoke("manifest", "validate", manifest)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [line for line in result.stdout.splitlines() if line.startswith(f"{manifest}:2")]
    assert len(result.stdout.splitlines()) == 1 and case.error in result.stdout


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_train_stops_with_one_line_or_skips_and_counts(modality, corpus, tiny_data, tmp_path):
    cases = [case for case in CASES if case.modality == modality]
    if modality == "image":
        good = [json.loads(line) for line in tiny_data["train"].read_text().splitlines()[:16]]
        for record in good:
            record["path"] = str(tiny_data["root"] / record["path"])
    else:
        good = [json.loads(line) for line in (SPEECH / "train.jsonl").read_text().splitlines()[:16]]
        for record in good:
            record["path"] = str(SPEECH / record["path"])
    records = good[:8] + [case.record for case in cases] + good[8:]
    manifest = corpus["folder"] / f"train-{modality}.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    common = ["--max-steps", 3, "--batch-size", 4, "--hidden", 16, "--channels", "8,8,8", "--quiet",
              "--device", "cpu", "--no-augment", "--run-dir", tmp_path / "run"]
    stop = invoke("train", manifest, "-o", tmp_path / "m.pt", *common)
    assert stop.exit_code == 1 and "Traceback" not in stop.stderr
    errors = [line for line in stop.stderr.splitlines() if line.startswith("error:")]
    bad_lines = [f"{manifest}:{9 + k}:" for k in range(len(cases))]
    assert len(errors) == 1 and any(line in errors[0] for line in bad_lines), stop.stderr
    skipped = invoke("train", manifest, "-o", tmp_path / "m.pt", "--skip-bad", *common)
    assert skipped.exit_code == 0, skipped.stderr
    assert (tmp_path / "m.pt").exists() and "Traceback" not in skipped.stderr
    counted = sum(int(word) for line in skipped.stderr.splitlines() if line.startswith("warning")
                  for word in line.split()[2:3] if word.isdigit())
    assert counted + skipped.stderr.count("skipping unreadable") >= 1
    shutil.rmtree(tmp_path / "run")
