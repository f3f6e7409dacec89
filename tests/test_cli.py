"""Every command through typer's CliRunner: stdout carries results, stderr messages, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from ctctool.cli import app

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, ctctool.cli; assert 'torch' not in sys.modules, 'torch imported at CLI import'"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = invoke("--help")
    assert result.exit_code == 0 and "train" in result.stdout and "align" in result.stdout


def test_version_names_backend():
    result = invoke("--version")
    assert result.exit_code == 0 and "ctctool" in result.stdout and "backend" in result.stdout


def test_usage_error_exits_2():
    result = invoke("decode")
    assert result.exit_code == 2


def test_train_cli_writes_model_and_reports_cer(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    result = invoke("train", tiny_data["train"], "--val", tiny_data["val"], "-o", out, "--run-dir",
                    tmp_path / "run", "--max-steps", 3, "--batch-size", 8, "--hidden", 16, "--quiet",
                    "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "best validation CER" in result.stdout and out.exists()
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 3
    split = row["ms_per_step"]  # where a step's time goes: loading, forward-backward, optimizer
    assert set(split) == {"load", "forward_backward", "optimizer"} and split["forward_backward"] > 0
    assert all(value >= 0 for value in split.values())


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("2.5m", 150.0), ("1h30m", 5400.0),
                                               ("1h 30m 10s", 5410.0), ("15M", 900.0)])
def test_durations(text, seconds):
    from ctctool.cli.train import parse_duration

    assert parse_duration(text, "--max-time") == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "30m1h", "1m1m", "0", "-5s", "1e9", "2y"])
def test_bad_durations_are_usage_errors(text, tiny_data, tmp_path):
    result = invoke("train", tiny_data["train"], "-o", tmp_path / "m.pt", "--max-time", text, "--quiet")
    assert result.exit_code == 2 and "--max-time" in result.stderr and "duration" in result.stderr


def test_train_cli_max_time_reports_where_it_stopped(tiny_data, tmp_path):
    result = invoke("train", tiny_data["train"], "--val", tiny_data["val"], "-o", tmp_path / "m.pt", "--run-dir",
                    tmp_path / "run", "--max-steps", 100000, "--max-time", "2s", "--batch-size", 8, "--hidden", 16,
                    "--quiet", "--device", "cpu", "--accumulate", 2)
    assert result.exit_code == 0, result.stderr
    assert "--max-time reached at step" in result.stdout and "of 100000" in result.stdout
    assert (tmp_path / "m.pt").exists() and (tmp_path / "run" / "resume.pt").exists()


def test_train_cli_unknown_characters_and_missing_manifest(tiny_data, tmp_path):
    alphabet = tmp_path / "abc.txt"
    alphabet.write_text("abc", encoding="utf-8")
    result = invoke("train", tiny_data["train"], "-o", tmp_path / "m.pt", "--alphabet", alphabet, "--max-steps", 1)
    assert result.exit_code == 1
    assert "not in the alphabet" in result.stderr and "--lenient" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = invoke("train", tmp_path / "nope.jsonl", "-o", tmp_path / "m.pt")
    assert result.exit_code == 1 and "nope.jsonl: no such file" in result.stderr


def test_info(tiny_model):
    result = invoke("info", tiny_model, "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["modality"] == "image" and info["training"]["steps"] == 6
    assert "alphabet" in invoke("info", tiny_model).stdout


def test_eval_json_and_per_line(tiny_model, tiny_data, tmp_path):
    per_line = tmp_path / "lines.jsonl"
    result = invoke("eval", tiny_model, tiny_data["val"], "--json", "--per-line", per_line)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("cer", "wer", "lines", "chars", "substitutions", "insertions", "deletions"):
        assert key in summary
    assert summary["lines"] == 8 and 0 <= summary["wer"] and summary["cer"] <= 1.5
    rows = [json.loads(line) for line in per_line.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8 and sum(r["chars"] for r in rows) == summary["chars"]
    assert sum(r["char_errors"] for r in rows) == summary["substitutions"] + summary["insertions"] + summary["deletions"]
    table = invoke("eval", tiny_model, tiny_data["val"])
    assert table.exit_code == 0 and "CER" in table.stdout and "substitutions" in table.stdout


def test_eval_needs_text(tiny_model, tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"path": "x.png", "text": "a"}\n{"path": "y.png"}\n', encoding="utf-8")
    result = invoke("eval", tiny_model, m)
    assert result.exit_code == 1 and f"{m}:2: text: missing" in result.stderr


def test_decode_paths_stdin_and_formats(tiny_model, tiny_data):
    root = tiny_data["root"]
    paths = [str(root / "lines" / f"val-0000{i}.png") for i in range(3)]
    text = invoke("decode", tiny_model, *paths)
    assert text.exit_code == 0 and len(text.stdout.splitlines()) == 3
    piped = invoke("decode", tiny_model, "-", "--format", "jsonl", input="\n".join(paths) + "\n")
    assert piped.exit_code == 0
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["path"] for r in rows] == paths  # input order
    assert [r["text"] for r in rows] == text.stdout.splitlines()
    for row in rows:
        assert set(row) >= {"id", "path", "text", "score", "confidence", "chars"}
        assert len(row["chars"]) == len(row["text"])
        assert all(0 <= c["confidence"] <= 1 and c["start"] <= c["end"] for c in row["chars"])
    tsv = invoke("decode", tiny_model, tiny_data["val"], "--format", "tsv")
    assert tsv.exit_code == 0 and tsv.stdout.splitlines()[0].split("\t") == ["id", "path", "text", "confidence",
                                                                               "error"]
    assert len(tsv.stdout.splitlines()) == 9
    manifest_stdin = invoke("decode", tiny_model, "-", input=json.dumps({"path": paths[0]}) + "\n")
    assert manifest_stdin.exit_code == 0 and manifest_stdin.stdout == text.stdout.splitlines(keepends=True)[0]


def test_decode_bad_inputs_keep_going(tiny_model, tiny_data, tmp_path):
    good = str(tiny_data["root"] / "lines" / "val-00000.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    missing = tmp_path / "missing.png"
    stop = invoke("decode", tiny_model, good, missing, good)
    assert stop.exit_code == 1 and f"path: no such file {missing}" in stop.stderr
    going = invoke("decode", tiny_model, good, corrupt, missing, good, "--format", "jsonl", "--keep-going")
    assert going.exit_code == 3
    rows = [json.loads(line) for line in going.stdout.splitlines()]
    assert [("error" in r) for r in rows] == [False, True, True, False]
    assert rows[1]["path"] == str(corrupt) and "not an image" in rows[1]["error"]
    assert rows[0]["text"] == rows[3]["text"]
    assert "2 of 4 inputs failed" in going.stderr


def test_decode_bad_format_and_bad_model(tiny_model, tmp_path):
    assert invoke("decode", tiny_model, "x.png", "--format", "xml").exit_code == 2  # a usage error
    junk = tmp_path / "junk.pt"
    junk.write_text("junk")
    result = invoke("decode", junk, "x.png")
    assert result.exit_code == 1 and "not a ctctool model file" in result.stderr


def test_align_formats_and_png(tiny_model, tiny_data, tmp_path):
    result = invoke("align", tiny_model, tiny_data["val"], "--format", "jsonl", "--png", tmp_path / "png")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    first = rows[0]
    references = [json.loads(line)["text"] for line in tiny_data["val"].read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == references  # aligned to the transcript, not the guess
    assert "".join(c["token"] for c in first["chars"]) == references[0]
    assert [w["token"] for w in first["words"]] == references[0].split()
    width = Image.open(tiny_data["root"] / "lines" / "val-00000.png").width
    starts = [c["start"] for c in first["chars"]]
    assert starts == sorted(starts) and 0 <= starts[0] and first["chars"][-1]["end"] <= width
    assert Image.open(tmp_path / "png" / "val-00000.png").size[0] == width
    tsv = invoke("align", tiny_model, tiny_data["val"], "--format", "tsv")
    assert tsv.stdout.splitlines()[0] == "id\tlevel\tstart_px\tend_px\ttoken\tconfidence"
    hocr = invoke("align", tiny_model, tiny_data["val"], "--format", "hocr")
    assert hocr.exit_code == 0 and hocr.stdout.count('class="ocr_line"') == 8 and "ocrx_word" in hocr.stdout
    ctm = invoke("align", tiny_model, tiny_data["val"], "--format", "ctm")
    assert ctm.exit_code == 2 and "for audio models" in ctm.stderr


def test_align_without_text_and_infeasible(tiny_model, tiny_data, tmp_path):
    line = tiny_data["root"] / "lines" / "val-00000.png"
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"path": str(line)}) + "\n" + json.dumps({"path": str(line), "text": "ab" * 200}) + "\n",
                 encoding="utf-8")
    result = invoke("align", tiny_model, m, "--keep-going")
    assert result.exit_code == 3
    rows = [json.loads(r) for r in result.stdout.splitlines()]
    assert rows[0]["aligned"] == "decoded"
    assert "needs at least 400 frames" in rows[1]["error"] and f"{m}:2: text:" in rows[1]["error"]


def test_manifest_commands(tmp_path, tiny_data):
    for i, text in enumerate(["one", "two"]):
        Image.new("L", (30, 10), 255).save(tmp_path / f"l{i}.png")
        (tmp_path / f"l{i}.gt.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = invoke("manifest", "import", "gt-txt", tmp_path, "-o", out)
    assert result.exit_code == 0 and "wrote 2 items" in result.stderr
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["one", "two"]
    assert invoke("manifest", "validate", out).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "l0.png"}\n{"path": 3}\n{"path": "gone.png"}\n', encoding="utf-8")
    result = invoke("manifest", "validate", bad)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{bad}:2: path: expected a non-empty string, got 3",
                                          f"{bad}:3: path: no such file {tmp_path / 'gone.png'}"]
    tsv = tmp_path / "list.tsv"
    tsv.write_text("l0.png\tone\n", encoding="utf-8")
    assert invoke("manifest", "import", "tsv", tsv, "-o", "-").stdout.count('"text": "one"') == 1
    stats = invoke("manifest", "stats", tiny_data["train"], "--json")
    assert json.loads(stats.stdout)["items"] == 48


@pytest.mark.parametrize("command, names", [
    ("train", ["CTCTOOL_DEVICE", "CTCTOOL_THREADS", "CTCTOOL_SEED", "CTCTOOL_QUIET", "CTCTOOL_MAX_WIDTH",
               "CTCTOOL_MAX_SECONDS"]),
    ("decode", ["CTCTOOL_DEVICE", "CTCTOOL_THREADS", "CTCTOOL_BEAM", "CTCTOOL_MAX_WIDTH", "CTCTOOL_MAX_SECONDS"]),
    ("eval", ["CTCTOOL_DEVICE", "CTCTOOL_BEAM", "CTCTOOL_MAX_WIDTH"]),
    ("align", ["CTCTOOL_DEVICE", "CTCTOOL_BEAM", "CTCTOOL_MAX_SECONDS"]),
])
def test_subcommand_help_shows_env_vars(command, names):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert all(name in result.stdout for name in names), [n for n in names if n not in result.stdout]


def test_limits_come_from_options_and_environment(tiny_model, tiny_data):
    image = str(tiny_data["root"] / "lines" / "val-00000.png")
    flag = invoke("decode", tiny_model, image, "--max-width", 20)
    assert flag.exit_code == 1 and "over the --max-width limit of 20" in flag.stderr
    env = runner.invoke(app, ["decode", str(tiny_model), image], env={"CTCTOOL_MAX_WIDTH": "20"})
    assert env.exit_code == 1 and "over the --max-width limit of 20" in env.stderr
    assert invoke("decode", tiny_model, image, "--max-width", 5).exit_code == 2  # below the minimum


def test_decode_beam_nbest_lm_lexicon_hotwords(tiny_model, tiny_data, tmp_path):
    paths = [str(tiny_data["root"] / "lines" / f"val-0000{i}.png") for i in range(2)]
    greedy = invoke("decode", tiny_model, *paths, "--beam", "1", "--format", "jsonl")
    beam = invoke("decode", tiny_model, *paths, "--beam", "8", "--nbest", "3", "--format", "jsonl")
    assert greedy.exit_code == 0 and beam.exit_code == 0, beam.stderr
    rows = [json.loads(line) for line in beam.stdout.splitlines()]
    assert all(1 <= len(r["nbest"]) <= 3 and r["nbest"][0]["text"] == r["text"] for r in rows)
    assert all(r["nbest"][i]["score"] >= r["nbest"][i + 1]["score"] for r in rows for i in range(len(r["nbest"]) - 1))
    lm_file = tmp_path / "lm.bin"
    built = invoke("lm", "build", tiny_data["train"], "-o", lm_file, "--order", "4")
    assert built.exit_code == 0 and lm_file.exists() and "order 4" in built.stderr
    with_lm = invoke("decode", tiny_model, *paths, "--lm", lm_file, "--alpha", "0.8", "--beta", "0.5",
                     "--format", "jsonl")
    assert with_lm.exit_code == 0, with_lm.stderr
    assert all("lm_score" in json.loads(line) for line in with_lm.stdout.splitlines())
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("the\nof\nand\n", encoding="utf-8")
    constrained = invoke("decode", tiny_model, *paths, "--lexicon", lexicon)
    assert constrained.exit_code == 0
    assert all(set(line.split()) <= {"the", "of", "and"} for line in constrained.stdout.splitlines())
    hot = invoke("decode", tiny_model, *paths, "--hotword", "the:1.5", "--hotword", "and")
    assert hot.exit_code == 0
    refused = invoke("decode", tiny_model, *paths, "--beam", "1", "--lm", lm_file)
    assert refused.exit_code == 2 and "need the beam search" in refused.stderr
    bad_lm = tmp_path / "bad.bin"
    bad_lm.write_bytes(b"nope")
    result = invoke("decode", tiny_model, *paths, "--lm", bad_lm)
    assert result.exit_code == 1 and "not a ctctool character LM" in result.stderr


def test_eval_and_align_take_beam_options(tiny_model, tiny_data):
    greedy = json.loads(invoke("eval", tiny_model, tiny_data["val"], "--json", "--beam", "1").stdout)
    beam = json.loads(invoke("eval", tiny_model, tiny_data["val"], "--json", "--beam", "16").stdout)
    assert greedy["chars"] == beam["chars"] and 0 <= beam["cer"]
    assert invoke("align", tiny_model, tiny_data["val"], "--beam", "4").exit_code == 0


def test_bad_json_line_in_a_manifest_names_file_and_line(tiny_model, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.png"}\n{"path": "b.png", oops}\n', encoding="utf-8")
    for command in (["decode", tiny_model, manifest], ["eval", tiny_model, manifest], ["align", tiny_model, manifest]):
        result = invoke(*command)
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: {manifest}:2: not valid JSON (Expecting property name enclosed in " \
                                        "double quotes at column 19)"


def test_train_scores_several_validation_sets_and_selects_by_one(tiny_data, tmp_path):
    """--val NAME=PATH repeated: every set is scored and logged; --select-by picks the best model."""
    out = tmp_path / "m.pt"
    result = invoke("train", tiny_data["train"], "--val", f"seen={tiny_data['train']}",
                    "--val", f"unseen={tiny_data['val']}", "--select-by", "unseen", "-o", out,
                    "--run-dir", tmp_path / "run", "--max-steps", 6, "--eval-every", 2, "--batch-size", 8,
                    "--hidden", 16, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4, 6]
    for row in rows:
        assert set(row["sets"]) == {"seen", "unseen"} and row["select_by"] == "unseen"
        assert row["cer"] == row["sets"]["unseen"]["cer"]
    best = min(rows, key=lambda row: (row["sets"]["unseen"]["cer"], row["step"]))
    training = torch.load(out, weights_only=True)["training"]
    assert training["steps"] == best["step"] and training["best_val_cer"] == best["sets"]["unseen"]["cer"]
    assert set(training["val_scores"]) == {"seen", "unseen"} and training["select_by"] == "unseen"
    assert "seen CER" in result.stderr and "unseen CER" in result.stderr and "seen CER" in result.stdout
    unknown = invoke("train", tiny_data["train"], "--val", tiny_data["val"], "--select-by", "heldout",
                     "-o", out, "--max-steps", 1)
    assert unknown.exit_code == 2 and "no validation set of that name (have: val)" in unknown.stderr
    twice = invoke("train", tiny_data["train"], "--val", tiny_data["val"], "--val", tiny_data["val"], "-o", out)
    assert twice.exit_code == 2 and "already given" in twice.stderr


@given(count=st.integers(0, 60), jobs=st.integers(1, 12))
def test_shards_cover_every_item_once_in_order(count, jobs):
    from ctctool.cli.common import shard_items

    items = list(range(count))
    slices = [shard_items(items, (k, jobs)) for k in range(1, jobs + 1)]
    assert [x for part in slices for x in part] == items
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


@pytest.mark.parametrize(("command", "fmt"), [("decode", "tsv"), ("decode", "jsonl"), ("decode", "text"),
                                              ("align", "tsv"), ("align", "jsonl")])
def test_shard_outputs_concatenate_to_the_one_job_output(tiny_model, tiny_data, command, fmt):
    # On the CPU, byte for byte. On a GPU the kernels follow the batch's shape, and a shard
    # batches its inputs differently: same text, scores apart in the last digit (README).
    whole = invoke(command, tiny_model, tiny_data["val"], "--format", fmt, "--device", "cpu")
    assert whole.exit_code == 0, whole.output
    parts = [invoke(command, tiny_model, tiny_data["val"], "--format", fmt, "--shard", f"{k}/3", "--device", "cpu")
             for k in (1, 2, 3)]
    assert all(part.exit_code == 0 for part in parts)
    assert "".join(part.stdout for part in parts) == whole.stdout
    assert whole.stdout.count("\n") >= 8


@pytest.mark.parametrize(("args", "message"), [(["decode", "--shard", "3/2"], "1 <= K <= N"),
                                               (["decode", "--shard", "two"], "K/N"),
                                               (["align", "--shard", "1/2", "--format", "hocr"], "would not concatenate"),
                                               (["align", "--shard", "1/2", "--format", "ctm"], "sorted by file")])
def test_bad_shards_are_usage_errors(tiny_model, tiny_data, args, message):
    result = invoke(args[0], tiny_model, tiny_data["val"], *args[1:])
    assert result.exit_code == 2 and message in result.output


@given(st.lists(st.sampled_from(["a.png", "a.png-2", "a.png-2-2", "b.wav", "a.png-3"]), max_size=12))
def test_streamed_paths_get_the_ids_a_whole_list_gets(paths):
    from ctctool.manifest import items_from_paths, stream_path_items

    pairs = [(path, f"<stdin>:{n}") for n, path in enumerate(paths, 1)]
    assert [i.id for i in stream_path_items(pairs, root=".")] == [i.id for i in items_from_paths(pairs, root=".")]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_decode_streams_paths_from_a_pipe_that_stays_open(tmp_path, workers):
    """Results come while stdin is still open: the first window (8 x --batch-size) is decoded
    without waiting for the end of the list, also with reader processes (the default on more
    than 2 cores; with them the first results waited for the next window's lines)."""
    import select

    from conftest import OCR

    process = subprocess.Popen([sys.executable, "-m", "ctctool", "decode", "latin-print", "-", "--batch-size", "1",
                                "--format", "jsonl", "--workers", workers],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        process.stdin.write("".join(f"{OCR / 'lines' / f'test-0000{i}.png'}\n" for i in range(8)))
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "no result within 120 s while stdin stayed open"
        first = json.loads(process.stdout.readline())
        assert first["path"].endswith("test-00000.png") and first["text"]
    finally:
        process.stdin.close()
        process.wait(timeout=120)
    assert process.returncode == 0


def test_a_path_list_on_stdin_splits_at_line_feeds_only(tiny_model, tiny_data, tmp_path):
    """A file name may hold U+2028 (a line separator to str.splitlines): the list read whole
    (here with --shard) split it into two paths that did not exist."""
    import shutil

    odd = tmp_path / "line\u2028sep.png"
    shutil.copy(tiny_data["root"] / "lines" / "val-00000.png", odd)
    plain = tiny_data["root"] / "lines" / "val-00001.png"
    result = invoke("decode", tiny_model, "-", "--shard", "1/1", "--format", "jsonl", "--device", "cpu",
                    input=f"{odd}\r\n{plain}\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.split("\n") if line]  # jsonl keeps U+2028 raw
    assert [row["path"] for row in rows] == [str(odd), str(plain)] and all("text" in row for row in rows)
