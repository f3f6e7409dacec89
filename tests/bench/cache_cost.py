"""What keeping prepared lines between epochs (``train --cache-mb``) saves a training step: the
default recipe with ``--cache-mb 0`` and with the default budget, alternated round by round,
read from the step split training logs (``ms_per_step``: waiting for the batch, forward +
backward, optimizer) for steps 51-100 of 100, past the first epoch.

Each run trains on ``--train-lines`` evenly spaced lines of the set (480: 30 batches an epoch)
with ``--augment-warmup 0`` (full augmentation on every measured step). The runs are the same
bit for bit; only their time differs.

    python tests/bench/cache_cost.py --out bench-out [--sets ocr,handwriting] [--handwriting DIR]
        [--threads 2] [--rounds 3]

The table goes to OUT/cache_cost.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from step_cost import ROOT, set_manifests

STEPS, SPLIT_AT = 100, 50  # validated at 50 and 100: the second split covers steps 51-100
BUDGETS = (0, 1024)  # --cache-mb: none kept, the default


def split_of_run(train: Path, val: Path, cache_mb: int, threads: int, folder: Path) -> dict[str, float]:
    run = Path(tempfile.mkdtemp(dir=folder))
    subprocess.run([sys.executable, "-m", "ctctool", "train", str(train), "--val", str(val), "-o", str(run / "m.pt"),
                    "--run-dir", str(run / "run"), "--max-steps", str(STEPS), "--eval-every", str(SPLIT_AT),
                    "--seed", "0", "--device", "cpu", "--threads", str(threads), "--quiet", "--augment-warmup", "0",
                    "--cache-mb", str(cache_mb)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (run / "run" / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows[-1]["ms_per_step"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--sets", default="ocr,handwriting")
    parser.add_argument("--handwriting", help="folder of the recipe bench's rendered handwriting set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-lines", type=int, default=480)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cache-cost-"))
    lines = [f"# training step with and without prepared lines kept, {args.threads} thread(s), steps "
             f"{SPLIT_AT + 1}-{STEPS} on {args.train_lines} lines, medians of {args.rounds} alternated rounds, ms",
             "", "| set | --cache-mb | batch wait | forward + backward | optimizer | step |", "|---|---|---|---|---|---|"]
    for name in args.sets.split(","):
        manifests = set_manifests(name, args.handwriting, folder, args.train_lines)
        if manifests is None:
            continue
        train, val = manifests
        splits: dict[int, list[dict[str, float]]] = {budget: [] for budget in BUDGETS}
        for round_ in range(args.rounds):
            for budget in BUDGETS if round_ % 2 == 0 else reversed(BUDGETS):
                splits[budget].append(split_of_run(train, val, budget, args.threads, folder))
                print(name, round_, budget, splits[budget][-1], file=sys.stderr, flush=True)
        for budget in BUDGETS:
            parts = {part: statistics.median(split[part] for split in splits[budget]) for part in splits[budget][0]}
            lines.append(f"| {name} | {budget} | {parts['load']:.1f} | {parts['forward_backward']:.1f} | "
                         f"{parts['optimizer']:.1f} | {sum(parts.values()):.1f} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "cache_cost.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
