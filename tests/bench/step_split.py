"""`make bench`, part 5: where a training step's time goes (waiting for the batch, forward +
loss + backward, optimizer), for OCR and speech, with the batches loaded in the training
process (--workers 0) and by DataLoader worker processes (--workers 2).

Each run is `ctctool train` for --steps steps on the bundled data, validated once at the end;
the split comes from the `ms_per_step` field that training logs at every validation.

    python tests/bench/step_split.py --out bench-out [--steps 60] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CTCTOOL = str(Path(sys.executable).parent / "ctctool")
SETS = {"OCR (data/ocr, 2,400 lines)": ("data/ocr/train.jsonl", "data/ocr/val.jsonl"),
        "speech (data/speech, 1,300 clips)": ("data/speech/train.jsonl", "data/speech/val.jsonl")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default="0,2")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    rows = []
    for name, (train, val) in SETS.items():
        for workers in args.workers.split(","):
            run_dir = folder / f"{len(rows)}"
            subprocess.run([CTCTOOL, "train", str(REPO / train), "--val", str(REPO / val), "-o", str(run_dir / "m.pt"),
                            "--run-dir", str(run_dir / "run"), "--max-steps", str(args.steps), "--eval-every",
                            str(args.steps), "--workers", workers, "--threads", args.threads, "--device", args.device,
                            "--quiet"], check=True)
            split = json.loads((run_dir / "run" / "log.jsonl").read_text().splitlines()[-1])["ms_per_step"]
            total = sum(split.values())
            rows.append((name, workers, split, total))
            print(name, workers, split, file=sys.stderr)
    lines = [f"# training step split, {args.steps} steps, batch 16, {args.threads} torch thread(s), {args.device}", "",
             "| data | --workers | load ms | forward-backward ms | optimizer ms | step ms | load share |",
             "|---|---|---|---|---|---|---|"]
    for name, workers, split, total in rows:
        lines.append(f"| {name} | {workers} | {split['load']:.1f} | {split['forward_backward']:.1f} | "
                     f"{split['optimizer']:.1f} | {total:.1f} | {100 * split['load'] / total:.1f}% |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "step_split.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
