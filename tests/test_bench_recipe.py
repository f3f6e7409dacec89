"""The recipe bench's bookkeeping (tests/bench/recipe.py): the README's ablation tables are its
output, so a failed run or a malformed row must cost only that run, never the table or the
runs that finished."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

_SPEC = importlib.util.spec_from_file_location("bench_recipe", Path(__file__).parent / "bench" / "recipe.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # its dataclasses look their module up while the class is built
_SPEC.loader.exec_module(bench)


def scored(variant: str, seed: int, cer: float) -> dict:
    return {"set": "ocr", "variant": variant, "seed": seed, "steps": 10, "seconds": 5.0,
            "scores": {"val": {"cer": cer, "wer": 2 * cer}, "unseen fonts": {"cer": 3 * cer, "wer": 0.5}}}


def test_table_gives_median_and_range_over_seeds_and_counts_rows_without_scores():
    rows = [scored("default", 0, 0.010), scored("default", 1, 0.030), scored("default", 2, 0.020),
            {"set": "ocr", "variant": "default", "seed": 3},  # a placeholder row: no scores
            {"set": "ocr", "variant": "-ema", "seed": 0, "scores": None}]
    text = bench.table(rows)
    line = next(row for row in text.splitlines() if row.startswith("| default |"))
    assert line == "| default | 3 | 2.00 (1.00-3.00) | 6.00 (3.00-9.00) | 5 |"
    assert "-ema |" not in text
    assert "Left out: 2 run(s) without scores: ocr default seed 3; ocr -ema seed 0." in text


def test_table_keeps_runs_scored_before_a_held_out_column_was_added():
    old = scored("default", 0, 0.010)
    new = scored("default", 1, 0.030)
    new["scores"]["new text"] = {"cer": 0.05, "wer": 0.1}
    text = bench.table([old, new])
    assert "| recipe | n | val | unseen fonts | new text | time (s) |" in text
    assert "| default | 2 | 2.00 (1.00-3.00) | 6.00 (3.00-9.00) | 5.00 [n=1] | 5 |" in text
    assert "| default | 1 | 1.00 | 3.00 | - | 5 |" in bench.table([old, {**new, "variant": "other"}])  # none of its runs


def test_a_failed_training_run_is_reported_kept_out_of_the_runs_and_retried_on_resume(tmp_path, monkeypatch):
    failing = bench.BenchSet("ocr", "missing-train.jsonl", "missing-val.jsonl", {}, steps=2, ablations={})
    row = bench.run_train(failing, "default", 0, [], tmp_path, None, 1)
    assert row["error"].startswith("train exited ") and "missing-train.jsonl" in row["error"]
    assert "scores" not in row

    # main(): the failure goes to failed.jsonl, not runs.jsonl, and the exit code says so
    calls = []

    def fake_run(bench_set, variant, seed, extra, out, baseline, threads, continue_run):
        calls.append((variant, seed, continue_run))
        if seed == 1:
            return {"set": bench_set.name, "variant": variant, "seed": seed, "steps": 2, "error": "train exited 1: boom"}
        return scored(variant, seed, 0.01)

    monkeypatch.setattr(bench, "run_train", fake_run)
    monkeypatch.setattr(sys, "argv", ["recipe.py", "--out", str(tmp_path / "out"), "--sets", "ocr",
                                      "--variants", "default", "--seeds", "2"])
    assert bench.main() == 1
    assert calls == [("default", 0, False), ("default", 1, False)]
    logged = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["seed"]) for r in logged] == [("default", 0)]
    assert "boom" in (tmp_path / "out" / "failed.jsonl").read_text()
    assert "| default | 1 |" in (tmp_path / "out" / "recipe.md").read_text()

    # --resume runs only what has no scored row yet
    calls.clear()
    monkeypatch.setattr(sys, "argv", sys.argv + ["--resume"])
    bench.main()
    assert calls == [("default", 1, True)]


def fake_ctctool(on_command):
    """A stand-in for subprocess.run of ctctool: every command succeeds, eval prints a summary;
    ``on_command`` sees each command first (to record it, or to write what train would)."""
    def run(command, **kwargs):
        on_command(command)
        stdout = json.dumps({"cer": 0.1, "wer": 0.2}) if command[3] == "eval" else ""
        return subprocess.CompletedProcess(command, 0, stdout=stdout, stderr="")
    return run


def test_a_run_stopped_mid_training_continues_from_its_resume_state_only_under_resume(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(bench.subprocess, "run", fake_ctctool(commands.append))
    one = bench.BenchSet("ocr", "train.jsonl", "val.jsonl", {}, steps=2, ablations={})
    (tmp_path / "runs" / "ocr-default-s0").mkdir(parents=True)
    (tmp_path / "runs" / "ocr-default-s0" / "resume.pt").write_bytes(b"state")
    fresh = bench.run_train(one, "default", 0, [], tmp_path, None, 1, continue_run=False)
    assert "--resume" not in commands[0] and "resumed" not in fresh
    commands.clear()
    continued = bench.run_train(one, "default", 0, [], tmp_path, None, 1, continue_run=True)
    assert "--resume" in commands[0] and continued["resumed"] is True
    text = bench.table([continued])
    assert "| default | 1 | 10.00 | - |" in text  # scored, but its partial time is not shown


def test_the_bench_script_runs_as_a_program():
    result = subprocess.run([sys.executable, str(Path(bench.__file__)), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--resume" in result.stdout


def test_new_text_subset_leaves_out_lines_sharing_a_long_run_with_the_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Once upon a midnight dreary, while I pondered, weak and weary\nshort\n", encoding="utf-8")
    rows = [{"path": "lines/a.png", "text": "WHILE I PONDERED, weak"},         # a 15+ run, other case: out
            {"path": "lines/b.png", "text": "a line the corpus never saw"},    # kept
            {"path": "lines/c.png", "text": "short"},                          # shorter than the window, inside: out
            {"path": "lines/d.png", "text": "dreary, while"},                  # 13 chars, inside: out
            {"path": "lines/e.png", "text": "upon a midnight"}]                # exactly 15, inside: out
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    kept = [json.loads(line) for line in
            bench.new_text_subset(manifest, corpus, tmp_path / "new.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in kept] == ["a line the corpus never saw"]
    assert kept[0]["path"] == str((tmp_path / "lines" / "b.png").resolve())


def test_the_speech_tuning_split_holds_out_the_klatt_voices_and_no_test_clip(tmp_path):
    tune = bench.speech_tuning_bench(bench.SETS["speech-tune"], tmp_path)
    read = lambda path: [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]  # noqa: E731
    train, val, klatt = read(tune.train), read(tune.val), read(tune.heldout["klatt voices"])
    variant = lambda row: row["voice"].partition("+")[2]  # noqa: E731
    assert {variant(row) for row in klatt} == bench.TUNING_HELD_OUT_VARIANTS
    assert not any(variant(row) in bench.TUNING_HELD_OUT_VARIANTS for row in train + val)
    # every training clip is on exactly one side; nothing comes from the test manifests
    speech = bench.ROOT / "data" / "speech"
    original = {str((speech / row["path"]).resolve()) for row in read(speech / "train.jsonl")}
    assert sorted(row["path"] for row in train + klatt) == sorted(original)
    tests = {str((speech / row["path"]).resolve()) for name in ("test-heldout", "test-engines")
             for row in read(speech / f"{name}.jsonl")}
    assert not tests & {row["path"] for row in train + val + klatt}
    assert all(Path(row["path"]).is_absolute() and Path(row["path"]).exists() for row in train + val + klatt)
    assert len(val) < len(read(speech / "val.jsonl"))  # validation lost its Klatt clips too
    # the 8 kHz copies: the same clips, words and voices, at telephone bandwidth, the same length
    narrow = read(tune.heldout["klatt voices, 8 kHz"])
    assert [(row["text"], row["voice"]) for row in narrow] == [(row["text"], row["voice"]) for row in klatt]
    for wide, copy in list(zip(klatt, narrow))[::40]:
        info, source = soundfile.info(copy["path"]), soundfile.info(wide["path"])
        assert info.samplerate == bench.NARROW_RATE and info.duration == pytest.approx(source.duration, abs=0.01)


def test_a_run_cut_short_by_its_budget_says_the_step_it_reached(tmp_path, monkeypatch):
    def train(command):
        if command[3] != "train":
            return
        run_dir = Path(command[command.index("--run-dir") + 1])
        run_dir.mkdir(parents=True, exist_ok=True)
        stop = 7 if "--max-time" in command else 10  # what train's log holds: one line per validation
        (run_dir / "log.jsonl").write_text("".join(json.dumps({"step": s, "cer": 0.5}) + "\n" for s in (5, stop)))

    monkeypatch.setattr(bench.subprocess, "run", fake_ctctool(train))
    one = bench.BenchSet("ocr", "train.jsonl", "val.jsonl", {}, steps=10, ablations=bench.cut_short("1m"))
    full = bench.run_train(one, "default", 0, [], tmp_path, None, 1)
    cut = [bench.run_train(one, "cut at 1m", seed, one.ablations["cut at 1m"], tmp_path, None, 1) for seed in (0, 1)]
    assert "steps_reached" not in full and [row["steps_reached"] for row in cut] == [7, 7]
    assert one.ablations["cut at 1m, -ema"] == ["--max-time", "1m", "--ema", "0"]
    text = bench.table([full, *cut])
    assert "| default | 1 |" in text and "| cut at 1m (stopped at step 7-7) | 2 |" in text


def test_a_misspelt_set_or_variant_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bench, "run_train", lambda *args: calls.append(args))
    for sets, variants, message in [("ocr", "-dropuot", "'-dropuot' names no variant of the sets ocr"),
                                    ("ocr", "speech:-reverb", "'speech:-reverb' names no variant of the sets speech"),
                                    ("ocr,speech", "ocr:-reverb", "'ocr:-reverb' names no variant of the sets ocr"),
                                    ("ocr,speach", "default", "no set 'speach'")]:
        monkeypatch.setattr(sys, "argv", ["recipe.py", "--out", str(tmp_path / "out"), "--sets", sets,
                                          f"--variants={variants}"])
        with pytest.raises(SystemExit) as stopped:
            bench.main()
        assert stopped.value.code == 2
        assert message in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "out").exists()


def test_every_variant_make_bench_recipe_names_exists():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    variants = re.search(r"--variants '([^']*)'", makefile.split("RECIPE_ARGS ?=")[1]).group(1).split(";")
    known = {"before", "default"}.union(*(s.ablations for s in bench.SETS.values()))
    assert len(variants) > 10 and set(variants) <= known, set(variants) - known


def test_first_seed_adds_later_seeds_without_rerunning_earlier_ones(tmp_path, monkeypatch):
    calls = []

    def fake_run(bench_set, variant, seed, extra, out, baseline, threads, continue_run):
        calls.append((variant, seed))
        return scored(variant, seed, 0.01)

    monkeypatch.setattr(bench, "run_train", fake_run)
    monkeypatch.setattr(sys, "argv", ["recipe.py", "--out", str(tmp_path / "out"), "--sets", "ocr", "--variants",
                                      "default;-ema", "--first-seed", "1", "--seeds", "2", "--ablation-seeds", "1"])
    assert bench.main() == 0
    assert sorted(calls) == [("-ema", 1), ("default", 1), ("default", 2)]
    # seeds 3-4 added to the folder keep seeds 1-2's rows; re-running seed 2 replaces only its own row
    argv = sys.argv[:7]
    monkeypatch.setattr(sys, "argv", argv + ["--first-seed", "3", "--seeds", "2", "--ablation-seeds", "0"])
    assert bench.main() == 0
    monkeypatch.setattr(sys, "argv", argv + ["--first-seed", "2", "--seeds", "1", "--ablation-seeds", "0"])
    assert bench.main() == 0
    logged = [json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["variant"], r["seed"]) for r in logged) == [
        ("-ema", 1), ("default", 1), ("default", 2), ("default", 3), ("default", 4)]
    assert "| default | 4 |" in (tmp_path / "out" / "recipe.md").read_text()
    # a removal's name after --variants is its value, not an option
    calls.clear()
    monkeypatch.setattr(sys, "argv", argv[:5] + ["--variants", "-ema", "--first-seed", "5", "--ablation-seeds", "1"])
    assert bench.main() == 0 and calls == [("-ema", 5)]
    monkeypatch.setattr(sys, "argv", sys.argv[:7] + ["--first-seed", "-1"])
    with pytest.raises(SystemExit):
        bench.main()
