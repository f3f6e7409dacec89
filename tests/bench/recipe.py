"""Ablation of the training recipe on inputs from sources training never saw (make bench-recipe).

For each set (printed lines tested on unseen font families; handwriting-like lines tested on
hands (script and handwriting font families) training never saw, rendered by
``handwriting_set.py``; speech tested on held-out espeak-ng voices and on other engines, flite and
festival) it trains:

- ``before``: the recipe as it was before issue 8 (a git worktree of ``--baseline-rev``, run
  with its own defaults), the reference the goal is measured against;
- ``default``: today's defaults;
- one run per component removed (``-ema``, ``-elastic``, ``-label smoothing``, ...) or
  alternative tried (the cosine schedule, other fixed learning rates: the question ``--lr auto``
  would answer), each with today's defaults otherwise.

A fourth set, ``speech-tune`` (not run unless named in ``--sets``), is for choosing speech
recipe changes without the test engines: the speech training clips with espeak-ng's Klatt
variants held out of training and scored as the held-out set (``speech_tuning_bench``).

Every run has the same number of steps and is scored greedily on its validation set and on the
held-out sets by ``ctctool eval``. Seeds: ``--seeds`` for before/default, ``--ablation-seeds``
for the removals, numbered from ``--first-seed`` (0; 1 adds seeds to a folder that has seed 0:
a run measures again only the runs it names, and replaces only their rows in ``runs.jsonl``).
Runs go one at a time unless ``--jobs N`` (timing-sensitive work runs alone; CER does not depend
on it, the time column does) and each result is appended to ``runs.jsonl`` as it finishes, so
an interrupted bench keeps what it measured and ``--resume`` skips finished runs and continues a
run stopped mid-training from its resume state (its time then left out of the table). A run whose training or scoring fails goes to ``failed.jsonl``
with its last error line instead (the other runs go on; the exit code is 1), so ``--resume``
runs it again. The table goes to ``recipe.md``.

    python tests/bench/recipe.py --out bench-out/recipe [--sets ocr,speech] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchSet:
    name: str
    train: str
    val: str
    heldout: dict[str, str]  # name -> manifest of inputs from a source training never saw
    steps: int
    ablations: dict[str, list[str]]  # variant -> extra train options


# The same removals on every set: the weight average, augmentation as a whole, and the parts of
# the 2026-12-02 objective and schedule ("cosine, no label smoothing" is the 2026-12-01 default).
COMMON_ABLATIONS = {
    "-ema": ["--ema", "0"],
    "augment none": ["--augment", "none"],
    "augment strong": ["--augment", "strong"],
    "dropout 0.4": ["--dropout", "0.4"],
    "-dropout": ["--dropout", "0"],
    "-weight decay": ["--weight-decay", "0"],
    # Five times the default (2026-12-06): leaving weight decay out cost every set, so 0.01 may
    # not be past its best either.
    "weight decay 0.05": ["--weight-decay", "0.05"],
}
# A run cut short by its time budget (--max-time) while the one-cycle rate is still high, with
# and without the weight average: at full length the two measure alike (the rate ends near
# zero), so this is the case the average is for. The budgets stop a 2-core machine running two
# jobs at about half of the set's steps; each row says the steps its runs reached.
def cut_short(budget: str) -> dict[str, list[str]]:
    return {f"cut at {budget}": ["--max-time", budget], f"cut at {budget}, -ema": ["--max-time", budget, "--ema", "0"]}


RECIPE_ABLATIONS = {
    "-label smoothing": ["--label-smoothing", "0"],
    "cosine schedule": ["--schedule", "cosine"],
    "cosine, no label smoothing": ["--schedule", "cosine", "--label-smoothing", "0"],
}

# latin-print fine-tuned with the from-scratch recipe's rate, schedule and smoothing (the
# fine-tuning defaults suit short adaptations): the base of the `init latin-print, onecycle` variants.
FINE_TUNE_FROM_SCRATCH_RECIPE = ["--init", "latin-print", "--lr", "2e-3", "--schedule", "onecycle",
                                 "--label-smoothing", "0.1"]

SETS = {
    "ocr": BenchSet(
        "ocr", "data/ocr/train.jsonl", "data/ocr/val.jsonl",
        {"test (same fonts)": "data/ocr/test.jsonl", "unseen fonts": "data/ocr/test-unseen-fonts.jsonl"},
        steps=1200,
        ablations={
            **COMMON_ABLATIONS,
            "-elastic,-wave": ["--augment", "default,-elastic,-wave"],
            "-letters": ["--augment", "default,-letters"],
            "-affine": ["--augment", "default,-affine"],
            "-stroke,-resolution": ["--augment", "default,-stroke,-resolution"],
            "-contrast,-noise,-blur": ["--augment", "default,-contrast,-noise,-blur"],
            "-margins": ["--augment", "default,-margins"],
            "no augmentation warm-up": ["--augment-warmup", "0"],
            "deslant": ["--deslant"],
            "-center-normalize": ["--no-center-normalize"],
            **RECIPE_ABLATIONS,
            # Twice the smoothing weight: the handwriting recipe from random weights (2026-12-06)
            # measured on printed lines before any talk of an image default.
            "label smoothing 0.2": ["--label-smoothing", "0.2"],
            "lr 1e-3": ["--lr", "1e-3"],
            "lr 4e-3": ["--lr", "4e-3"],
            **cut_short("6m"),
        }),
    "speech": BenchSet(
        "speech", "data/speech/train.jsonl", "data/speech/val.jsonl",
        {"held-out voices": "data/speech/test-heldout.jsonl", "other engines": "data/speech/test-engines.jsonl"},
        steps=1200,
        ablations={
            **COMMON_ABLATIONS,
            "-reverb": ["--augment", "default,-reverb"],
            "-telephone": ["--augment", "default,-telephone"],
            "-vtlp": ["--augment", "default,-vtlp"],
            "-bandwidth": ["--augment", "default,-bandwidth"],
            **RECIPE_ABLATIONS,
            **cut_short("5m"),
        }),
    # The tuning split of the speech set (speech_tuning_bench): recipe changes for other engines are
    # chosen on it, so that the test engines (flite, festival) play no part in the choice.
    "speech-tune": BenchSet(
        "speech-tune", "{st}/train.jsonl", "{st}/val.jsonl",
        # the same Klatt clips resampled to 8 kHz: a clip's band, not its voice, changed
        {"klatt voices": "{st}/klatt-voices.jsonl", "klatt voices, 8 kHz": "{st}/klatt-voices-8k.jsonl"},
        steps=1200,
        ablations={
            "augment strong": ["--augment", "strong"],
            "augment light": ["--augment", "light"],
            "label smoothing 0.2": ["--label-smoothing", "0.2"],
            "label smoothing 0.3": ["--label-smoothing", "0.3"],
            "n-mels 40": ["--n-mels", "40"],
            "dropout 0.4": ["--dropout", "0.4"],
            "weight decay 0.05": ["--weight-decay", "0.05"],
            "no augmentation warm-up": ["--augment-warmup", "0"],
            "preset small": ["--preset", "small"],
            # Wider and deeper LSTMs: speech steps at about half of `before`'s, so there is room
            "hidden 192": ["--hidden", "192"],
            "layers 3": ["--layers", "3"],
            "-bandwidth": ["--augment", "default,-bandwidth"],
            # more clips a step than the default 16, at about 1.5x and 2x the step time
            "batch 24": ["--batch-size", "24"],
            "batch 32": ["--batch-size", "32"],
        }),
    # Rendered into OUT/handwriting by handwriting_set.py (script and handwriting fonts, split by
    # family); {hw} stands for that folder.
    "handwriting": BenchSet(
        "handwriting", "{hw}/train.jsonl", "{hw}/val.jsonl",
        {"unseen hands": "{hw}/test-unseen-hands.jsonl",
         # the same lines less those whose text latin-print trained on (for the `init` variants)
         "unseen hands, new text": "{hw}/test-unseen-hands-new-text.jsonl"},
        steps=3000,  # at 1,200 steps both recipes were still at 41-50% validation CER, far from converged
        ablations={
            **COMMON_ABLATIONS,
            "-elastic,-wave": ["--augment", "default,-elastic,-wave"],
            # Per-letter jitter (2026-12-05); left out, the recipe's lines are exactly those before it.
            "-letters": ["--augment", "default,-letters"],
            **RECIPE_ABLATIONS,
            "lr 4e-3": ["--lr", "4e-3"],
            # Slant correction is the default here since 2026-12-06 (chosen from the training lines,
            # 16% of which lean 14 degrees or more), so `deslant` now trains what `default` does
            # and `-deslant` is the removal; both stay so older tables can be reproduced.
            "deslant": ["--deslant"],
            "-deslant": ["--no-deslant"],
            # Twice the smoothing weight (2026-12-06): leaving it out costs 2.7-3.5 points on unseen
            # hands, so the curve may not have flattened at 0.1.
            "deslant, label smoothing 0.2": ["--deslant", "--label-smoothing", "0.2"],
            # The same weight without slant correction (measured as the handwriting default was
            # before slant correction was chosen by default).
            "label smoothing 0.2, -deslant": ["--label-smoothing", "0.2", "--no-deslant"],
            # Centre normalization, the image default since 2026-12-04 (measured then as the variant
            # "center-normalize" against the default before it), left out.
            "-center-normalize": ["--no-center-normalize"],
            # Alternatives, not removals: start from the bundled printed model (228 faces; none of
            # the hands' font packages), with the fine-tuning defaults or the from-scratch recipe.
            # Its training text holds some test transcripts: compare on the lines it does not hold.
            "init latin-print": ["--init", "latin-print"],
            "init latin-print, onecycle": [*FINE_TUNE_FROM_SCRATCH_RECIPE],
            # ... and read its lines centre-normalized (latin-print was trained on plain-scaled ones)
            "init latin-print, onecycle, center-normalize": [*FINE_TUNE_FROM_SCRATCH_RECIPE, "--center-normalize"],
            # ... and with slant correction too (2026-12-06: it helps the leaning hands from random weights)
            "init latin-print, onecycle, center-normalize, deslant": [*FINE_TUNE_FROM_SCRATCH_RECIPE,
                                                                      "--center-normalize", "--deslant"],
        }),
}


# The training text of the bundled latin-print model: the `init latin-print` variants start from a
# network that read it many times, and it holds passages of the bundled OCR set's text.
LATIN_PRINT_TEXT = ROOT / "data" / "latin-print" / "train.txt"
NOVEL_WINDOW = 15  # characters: a line sharing any run this long with that text is left out


def new_text_subset(manifest: Path, corpus: Path, out: Path, window: int = NOVEL_WINDOW) -> Path:
    """The rows of ``manifest`` none of whose ``window``-character runs (case-folded; the whole
    text when shorter) occurs in ``corpus``: test lines whose text a pretrained network never
    read, so a model started from it is not credited for remembering text. Paths are made
    absolute, so the subset can live anywhere."""
    known = corpus.read_text(encoding="utf-8").casefold()
    kept = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        text = row["text"].casefold()
        if any(text[start:start + window] in known for start in range(max(1, len(text) - window + 1))):
            continue
        row["path"] = str((manifest.parent / row["path"]).resolve())
        kept.append(row)
    _write_rows(out, kept)
    return out


def handwriting_bench(bench: BenchSet, folder: Path) -> BenchSet:
    """The handwriting set with its manifests rendered into ``folder`` (once; DONE marks it)."""
    if not (folder / "DONE").exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from handwriting_set import build

        build(folder)
    subset = folder / "test-unseen-hands-new-text.jsonl"
    if not subset.exists():
        new_text_subset(folder / "test-unseen-hands.jsonl", LATIN_PRINT_TEXT, subset)
    return _placed(bench, "{hw}", folder)


def _placed(bench: BenchSet, placeholder: str, folder: Path) -> BenchSet:
    """``bench`` with ``placeholder`` in its manifest paths replaced by ``folder``."""
    fill = lambda path: path.replace(placeholder, str(folder))  # noqa: E731
    return BenchSet(bench.name, fill(bench.train), fill(bench.val),
                    {name: fill(path) for name, path in bench.heldout.items()}, bench.steps, bench.ablations)


# espeak-ng's Klatt variants drive another synthesizer than its other voices (a Klatt formant
# model): the nearest thing inside the training set to a voice from another engine.
TUNING_HELD_OUT_VARIANTS = {"klatt", "klatt4"}


def speech_tuning_bench(bench: BenchSet, folder: Path) -> BenchSet:
    """The speech set split for tuning, written into ``folder``: training and validation clips
    less those of the Klatt variants, which become the held-out set (all from the training
    clips). Paths are made absolute, so the manifests can live anywhere."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = ROOT / "data" / "speech"
    held_out = []
    for split in ("train", "val"):
        kept = []
        for line in (speech / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            row["path"] = str((speech / row["path"]).resolve())
            if row["voice"].partition("+")[2] not in TUNING_HELD_OUT_VARIANTS:
                kept.append(row)
            elif split == "train":  # validation's Klatt clips are dropped: it keeps to training's voices
                held_out.append(row)
        _write_rows(folder / f"{split}.jsonl", kept)
    _write_rows(folder / "klatt-voices.jsonl", held_out)
    _write_rows(folder / "klatt-voices-8k.jsonl", [narrowband_copy(row, folder / "klatt-8k") for row in held_out])
    return _placed(bench, "{st}", folder)


NARROW_RATE = 8000  # Hz: telephone audio; nothing above 4 kHz reaches the model


def narrowband_copy(row: dict, folder: Path) -> dict:
    """``row`` with its clip resampled to NARROW_RATE, written into ``folder`` as WAV (once):
    the same voice and words as recorded at telephone bandwidth."""
    import soundfile

    from ctctool.features.resample import resample

    target = folder / (Path(row["path"]).stem + ".wav")
    if not target.exists():
        samples, rate = soundfile.read(row["path"], dtype="float32")
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(target, resample(samples, rate, NARROW_RATE), NARROW_RATE)
    return {**row, "path": str(target)}


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def baseline_tree(rev: str, out: Path) -> Path:
    tree = out / f"baseline-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(tree), rev], check=True,
                       capture_output=True)
    return tree


def run_train(bench: BenchSet, variant: str, seed: int, extra: list[str], out: Path, baseline: Path | None,
              threads: int, continue_run: bool = False) -> dict:
    tag = f"{bench.name}-{variant.replace(',', '_').replace(' ', '_')}-s{seed}"
    model = out / "models" / f"{tag}.pt"
    env = {**os.environ, "PYTHONPATH": str(baseline or ROOT)}
    command = [sys.executable, "-m", "ctctool", "train", str(ROOT / bench.train), "--val", str(ROOT / bench.val),
               "-o", str(model), "--run-dir", str(out / "runs" / tag), "--max-steps", str(bench.steps),
               "--seed", str(seed), "--device", "cpu", "--threads", str(threads), "--quiet", *extra]
    # A run stopped mid-training (a killed bench) continues from its resume state: training
    # resumes bit for bit, but its time is only the part after the restart, so the row says so.
    resumed = continue_run and (out / "runs" / tag / "resume.pt").exists()
    if resumed:
        command.append("--resume")
    started = time.perf_counter()
    trained = subprocess.run(command, env=env, cwd=baseline or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    seconds = time.perf_counter() - started
    failed = {"set": bench.name, "variant": variant, "seed": seed, "steps": bench.steps}  # plus "error"
    if trained.returncode != 0:  # one failed run must not cost the others their results
        return {**failed, "error": _failure("train", trained)}
    scores, by_font = {}, {}
    for name, manifest in {"val": bench.val, **bench.heldout}.items():
        per_line = out / "runs" / tag / f"eval-{name.replace(' ', '_')}.jsonl"
        result = subprocess.run([sys.executable, "-m", "ctctool", "eval", str(model), str(ROOT / manifest), "--beam",
                                 "1", "--json", "--per-line", str(per_line), "--device", "cpu",
                                 "--threads", str(threads)],
                                capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if result.returncode != 0:
            return {**failed, "error": _failure(f"eval on {name}", result)}
        summary = json.loads(result.stdout)
        scores[name] = {"cer": summary["cer"], "wer": summary["wer"]}
        families = cer_by_font(ROOT / manifest, per_line) if name != "val" else {}
        if families:
            by_font[name] = families
    row = {"set": bench.name, "variant": variant, "seed": seed, "steps": bench.steps, "seconds": round(seconds, 1),
           "scores": scores}
    if resumed:
        row["resumed"] = True
    reached = steps_reached(out / "runs" / tag / "log.jsonl")
    if reached is not None and reached < bench.steps:  # stopped by --max-time (or --patience)
        row["steps_reached"] = reached
    if by_font:
        row["cer_by_font"] = by_font
    return row


def steps_reached(log: Path) -> int | None:
    """The last step a run's log records (its final validation), None without a log."""
    if not log.exists():
        return None
    steps = [json.loads(line).get("step") for line in log.read_text().splitlines() if line.strip()]
    steps = [step for step in steps if isinstance(step, int)]
    return max(steps) if steps else None


def _failure(what: str, process: subprocess.CompletedProcess) -> str:
    """One line for a failed step: its exit code and the last line it wrote to stderr."""
    last = (process.stderr.strip().splitlines() or [f"exit code {process.returncode}"])[-1]
    return f"{what} exited {process.returncode}: {last}"


def cer_by_font(manifest: Path, per_line: Path) -> dict[str, float]:
    """CER per font family of a held-out manifest whose rows name their ``font`` (the rendered
    sets do): which unseen faces or hands carry the error. Empty when the rows name none."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = [json.loads(line) for line in per_line.read_text(encoding="utf-8").splitlines() if line.strip()]
    errors: dict[str, int] = {}
    chars: dict[str, int] = {}
    for row, result in zip(rows, results, strict=True):
        if "font" not in row:
            return {}
        family = str(row["font"]).split("-")[0]
        errors[family] = errors.get(family, 0) + result["char_errors"]
        chars[family] = chars.get(family, 0) + result["chars"]
    return {family: round(errors[family] / max(1, chars[family]), 4) for family in sorted(chars)}


def spread(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.2f}"
    return f"{statistics.median(pct):.2f} ({min(pct):.2f}-{max(pct):.2f})"


def table(rows: list[dict]) -> str:
    """The markdown tables of every scored run; rows without scores (a failed run, a hand-made
    placeholder) are left out and counted at the end, never a reason to lose the table."""
    scored, unscored = [], []
    for row in rows:
        (scored if isinstance(row.get("scores"), dict) and row["scores"] else unscored).append(row)
    rows = scored
    lines = ["# Training recipe ablation (make bench-recipe)", "",
             "Greedy decoding. CER (WER for speech) in %, median over seeds with (min-max); n = seeds;",
             "time = training wall time per run, median. `before` is the recipe before issue 8.", ""]
    for set_name in dict.fromkeys(row["set"] for row in rows):
        mine = [row for row in rows if row["set"] == set_name]
        metric = "wer" if set_name.startswith("speech") else "cer"
        # every score any run has, in first-seen order: a set scored on a new held-out manifest
        # keeps its older runs, which lack that column
        columns = list(dict.fromkeys(name for row in mine for name in row["scores"]))
        lines += [f"## {set_name} ({metric.upper()}, {mine[0]['steps']} steps)", "",
                  "| recipe | n | " + " | ".join(columns) + " | time (s) |",
                  "|---|---|" + "---|" * len(columns) + "---|"]
        for variant in dict.fromkeys(row["variant"] for row in mine):
            runs = [row for row in mine if row["variant"] == variant]
            cells = []
            for column in columns:
                values = [row["scores"][column][metric] for row in runs if column in row["scores"]]
                cell = spread(values) if values else "-"
                cells.append(cell if len(values) in (0, len(runs)) else f"{cell} [n={len(values)}]")
            whole = [row["seconds"] for row in runs if not row.get("resumed")]  # a resumed run's time is partial
            seconds = f"{statistics.median(whole):.0f}" if whole else "-"
            reached = [row["steps_reached"] for row in runs if "steps_reached" in row]
            label = variant + (f" (stopped at step {min(reached)}-{max(reached)})" if reached else "")
            lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + f" | {seconds} |")
        lines.append("")
        for heldout in dict.fromkeys(name for row in mine for name in row.get("cer_by_font", {})):
            # which faces or hands of one held-out set carry its error
            runs_of = [row for row in mine if heldout in row.get("cer_by_font", {})]
            families = sorted({family for row in runs_of for family in row["cer_by_font"][heldout]})
            lines += [f"{set_name}, {heldout}: CER % by font family (median over seeds)", "",
                      "| recipe | " + " | ".join(families) + " |", "|---|" + "---|" * len(families)]
            for variant in dict.fromkeys(row["variant"] for row in runs_of):
                runs = [row["cer_by_font"][heldout] for row in runs_of if row["variant"] == variant]
                cells = [f"{100 * statistics.median(run.get(f, float('nan')) for run in runs):.1f}" for f in families]
                lines.append(f"| {variant} | " + " | ".join(cells) + " |")
            lines.append("")
    if unscored:
        lines.append(f"Left out: {len(unscored)} run(s) without scores: " + "; ".join(
            f"{row.get('set')} {row.get('variant')} seed {row.get('seed')}" for row in unscored) + ".")
    return "\n".join(lines)


def _variants_joined(argv: list[str]) -> list[str]:
    """``--variants -bandwidth`` as ``--variants=-bandwidth``: argparse takes a value that starts
    with a dash for another option, and the removals' names do."""
    joined, rest = [], iter(argv)
    for arg in rest:
        joined.append(f"--variants={next(rest, '')}" if arg == "--variants" else arg)
    return joined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-out/recipe")
    parser.add_argument("--sets", default="ocr,handwriting,speech")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for `before` and `default`")
    parser.add_argument("--ablation-seeds", type=int, default=3, help="seeds for each component removed")
    parser.add_argument("--first-seed", type=int, default=0, help="seed numbers start here (to add seeds 1 "
                        "and 2 to a seed 0 run elsewhere: --first-seed 1 --seeds 2)")
    parser.add_argument("--variants", default="", help="variants separated by ';', each "
                        "VARIANT or SET:VARIANT (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="override every set's step count")
    parser.add_argument("--baseline-rev", default="47fe80b", help="git revision of the `before` recipe")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (2 x --threads 1 uses 2 cores "
                        "better than 1 x --threads 2; the time column then includes the sharing)")
    parser.add_argument("--resume", action="store_true", help="keep runs.jsonl and skip finished runs")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(_variants_joined(sys.argv[1:]))
    if args.first_seed < 0:
        parser.error("--first-seed: must be 0 or more")
    set_names = args.sets.split(",")
    for set_name in set_names:
        if set_name not in SETS:
            parser.error(f"--sets: no set {set_name!r}; the sets are {', '.join(SETS)}")
    for name in args.variants.split(";") if args.variants else []:
        # a misspelt name would match nothing and silently run nothing
        prefix, _, variant = name.partition(":") if ":" in name else ("", "", name)
        scope = [prefix] if prefix else set_names
        if prefix not in ("", *set_names) or not any(variant in ("before", "default", *SETS[s].ablations)
                                                      for s in scope):
            parser.error(f"--variants: {name!r} names no variant of the sets {', '.join(scope)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    remeasured: list[dict] = []  # rows of runs this call measures again (without --resume)
    failed: list[dict] = []
    if not args.table_only:
        wanted = set(args.variants.split(";")) if args.variants else None
        jobs = []
        for set_name in args.sets.split(","):
            bench = SETS[set_name]
            if set_name == "handwriting":
                bench = handwriting_bench(bench, out / "handwriting")
            if set_name == "speech-tune":
                bench = speech_tuning_bench(bench, out / "speech-tune")
            if args.steps:
                bench = BenchSet(**{**bench.__dict__, "steps": args.steps})
            plan = [("before", [], args.seeds), ("default", [], args.seeds)]
            plan += [(variant, extra, args.ablation_seeds) for variant, extra in bench.ablations.items()]
            for seed in range(args.first_seed, args.first_seed + args.seeds):  # seed-major: an interrupted
                for variant, extra, seeds in plan:  # bench still has every variant
                    if seed - args.first_seed >= seeds or (wanted and variant not in wanted and f"{set_name}:{variant}" not in wanted):
                        continue
                    earlier = [r for r in done if r["set"] == set_name and r["variant"] == variant and r["seed"] == seed]
                    if earlier and args.resume:
                        continue
                    remeasured += earlier
                    baseline = baseline_tree(args.baseline_rev, out) if variant == "before" else None
                    jobs.append((bench, variant, seed, extra, baseline))
        if remeasured:  # their old rows go; every other run's row stays
            done = [row for row in done if row not in remeasured]
            _write_rows(log, done)
        # before/default first, seed by seed (the goal is measured on them), then the removals
        jobs.sort(key=lambda job: (job[1] not in ("before", "default"), job[2]))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_train, bench, variant, seed, extra, out, baseline, args.threads, args.resume)
                       for bench, variant, seed, extra, baseline in jobs]
            for future in as_completed(futures):
                row = future.result()
                print(json.dumps(row), file=sys.stderr, flush=True)
                if "error" in row:  # kept out of runs.jsonl, so --resume runs it again
                    failed.append(row)
                    with open(out / "failed.jsonl", "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    continue
                done.append(row)
                with open(log, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
                (out / "recipe.md").write_text(table(done) + "\n", encoding="utf-8")
    (out / "recipe.md").write_text(table(done) + "\n", encoding="utf-8")
    print(table(done))
    for row in failed:
        print(f"failed: {row['set']} {row['variant']} seed {row['seed']}: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
