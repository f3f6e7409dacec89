"""Issue 8's step budget: today's default training step against `before`'s (the recipe before
issue 8, a git worktree of --baseline-rev), set by set, measured side by side in one run.

A step's cost is taken as the difference of two runs' wall times, ``--steps`` minus ``--short``
steps of the same recipe, divided by the steps between them: start-up, the slant survey, the
final validation (on 16 lines) and saving are in both runs and cancel. The two recipes' runs
alternate within a round (their order flips each round), so a busy machine slows both alike;
the table gives the median of the rounds and each round's ratio. Today's runs use
``--augment-warmup 0``: every measured step then has the augmentation at full strength, as the
last 70% of a default run has (the first 30% is cheaper), so the ratio is an upper bound.
Each run trains on ``--train-lines`` evenly spaced lines of the set (480: 30 batches an epoch),
so the measured steps (41-100) lie past the first epoch, as 19 of a 3,000-step run's 20 epochs
do: training keeps each line prepared after its first load (data.PreparedCache).

    python tests/bench/step_cost.py --out bench-out [--sets ocr,speech,handwriting]
        [--handwriting DIR] [--rounds 3] [--steps 100] [--short 40] [--train-lines 480] [--threads 1]

``--handwriting`` is a folder rendered by the recipe bench (``bench-out/recipe/handwriting``);
without one the handwriting set is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipe import baseline_tree

ROOT = Path(__file__).resolve().parents[2]
SETS = {"ocr": ("data/ocr/train.jsonl", "data/ocr/val.jsonl"),
        "speech": ("data/speech/train.jsonl", "data/speech/val.jsonl"),
        "handwriting": ("{hw}/train.jsonl", "{hw}/val.jsonl")}
VAL_LINES = 16  # the final validation is in both runs of a pair, so it only needs to be small
BATCH = 16  # lines a step, given to both recipes (the default of both)


def subset(manifest: Path, folder: Path, name: str, count: int, spread: bool) -> Path:
    """``count`` rows of ``manifest`` (its first ones, or evenly spaced with ``spread``), with
    paths made absolute (the copy lives elsewhere)."""
    lines = manifest.read_text(encoding="utf-8").splitlines()
    if spread and count < len(lines):
        lines = [lines[i * len(lines) // count] for i in range(count)]
    rows = []
    for line in lines[:count]:
        row = json.loads(line)
        row["path"] = str((manifest.parent / row["path"]).resolve())
        rows.append(json.dumps(row))
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def set_manifests(name: str, handwriting: str | None, folder: Path, train_lines: int) -> tuple[Path, Path] | None:
    """(training subset, small validation set) of bench set ``name``, written into ``folder``;
    None for the handwriting set when no rendered folder was given."""
    if name == "handwriting" and not handwriting:
        print("handwriting: skipped (no --handwriting folder)", file=sys.stderr)
        return None
    train, val = (Path(p.format(hw=handwriting)) for p in SETS[name])
    train, val = (p if p.is_absolute() else ROOT / p for p in (train, val))
    return (subset(train, folder, f"{name}-train", train_lines, spread=True),
            subset(val, folder, f"{name}-val", VAL_LINES, spread=False))


def timed_run(tree: Path, train: Path, val: Path, steps: int, folder: Path, threads: int, extra: list[str]) -> float:
    """Wall seconds of one ``ctctool train`` of ``steps`` steps from source tree ``tree``."""
    run = Path(tempfile.mkdtemp(dir=folder))
    command = [sys.executable, "-m", "ctctool", "train", str(train), "--val", str(val), "-o", str(run / "m.pt"),
               "--run-dir", str(run / "run"), "--max-steps", str(steps), "--seed", "0", "--device", "cpu",
               "--batch-size", str(BATCH), "--threads", str(threads), "--quiet", *extra]
    started = time.perf_counter()
    subprocess.run(command, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--sets", default="ocr,speech,handwriting")
    parser.add_argument("--handwriting", help="folder of the recipe bench's rendered handwriting set")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--short", type=int, default=40)
    parser.add_argument("--train-lines", type=int, default=480, help="evenly spaced training lines used")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline-rev", default="47fe80b", help="git revision of the `before` recipe")
    args = parser.parse_args()
    if not 0 < args.short < args.steps:
        parser.error("--short must be above 0 and below --steps")
    if args.short * BATCH < args.train_lines:
        print(f"warning: steps {args.short + 1}-{args.steps} include the first epoch, where every line is "
              "prepared (later epochs reuse them)", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="step-cost-"))
    trees = {"before": (baseline_tree(args.baseline_rev, out), []), "default": (ROOT, ["--augment-warmup", "0"])}
    rows = []
    for name in args.sets.split(","):
        manifests = set_manifests(name, args.handwriting, folder, args.train_lines)
        if manifests is None:
            continue
        train, val = manifests
        per_step: dict[str, list[float]] = {recipe: [] for recipe in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for recipe in order:
                tree, extra = trees[recipe]
                long = timed_run(tree, train, val, args.steps, folder, args.threads, extra)
                short = timed_run(tree, train, val, args.short, folder, args.threads, extra)
                per_step[recipe].append((long - short) / (args.steps - args.short))
            print(name, round_, {k: round(v[-1] * 1000, 1) for k, v in per_step.items()}, file=sys.stderr)
        ratios = [d / b for d, b in zip(per_step["default"], per_step["before"])]
        rows.append((name, statistics.median(per_step["before"]), statistics.median(per_step["default"]), ratios))
    lines = [f"# training step, today's default (full augmentation) vs before ({args.baseline_rev}), "
             f"{args.threads} thread(s), steps {args.short + 1}-{args.steps} on {args.train_lines} training lines, "
             f"{args.rounds} alternated rounds", "",
             "| set | before ms/step | default ms/step | ratio, median | ratio by round |", "|---|---|---|---|---|"]
    for name, before, default, ratios in rows:
        lines.append(f"| {name} | {1000 * before:.0f} | {1000 * default:.0f} | {statistics.median(ratios):.2f} | "
                     f"{', '.join(f'{r:.2f}' for r in ratios)} |")
    (out / "step_cost.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
