"""`make bench-finetune`: fine-tuning latin-print against training from scratch on a style it never saw.

The style: Yanone Kaffeesatz (a condensed display face whose package latin-print's recipe
keeps out of training) with heavy scan damage. 200 training lines of it (text from the
recipe's training corpus), 300 test lines (held-out text). For each step budget, two runs
with the same data, steps, batch and seed: `--init latin-print` (keeping its alphabet) and
from scratch (same network preset and alphabet). No validation set is given: each run keeps
its final weight average, so nothing is chosen on the test lines. Writes a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FONT_DIR = "/usr/share/fonts/opentype/yanone-kaffeesatz"


def ctctool(*args: str, capture: bool = False) -> str:
    command = [sys.executable, "-m", "ctctool", *args]
    print("+ ctctool " + " ".join(args), file=sys.stderr, flush=True)
    result = subprocess.run(command, check=True, capture_output=capture, text=True)
    return result.stdout if capture else ""


def render(out: Path, corpus: Path, lines: int, seed: int) -> Path:
    manifest = out / "manifest.jsonl"
    if not manifest.exists():
        ctctool("synth", str(corpus), "-o", str(out), "--fonts", FONT_DIR, "--n", str(lines), "--height", "48",
                "--degrade", "heavy", "--seed", str(seed), "--quiet", "--overwrite")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="100,300,1000", help="step budgets, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "finetune")
    args = parser.parse_args()
    if not Path(FONT_DIR).is_dir():
        raise SystemExit("bench-finetune needs the font: apt-get install fonts-yanone-kaffeesatz")
    args.out.mkdir(parents=True, exist_ok=True)
    test_text = (REPO / "data" / "latin-print" / "test.txt").read_text(encoding="utf-8").splitlines()[600:]
    (args.out / "test.txt").write_text("\n".join(test_text) + "\n", encoding="utf-8")
    train = render(args.out / "train", REPO / "data" / "latin-print" / "train.txt", 200, 11)
    test = render(args.out / "test", args.out / "test.txt", 300, 12)
    alphabet = args.out / "alphabet.txt"
    alphabet.write_text("".join(json.loads(ctctool("info", "latin-print", "--json", capture=True))["alphabet"]),
                        encoding="utf-8")
    zero = json.loads(ctctool("eval", "latin-print", str(test), "--json", "--threads", str(args.threads),
                              capture=True))
    rows = [{"steps": 0, "start": "latin-print as shipped", "cer": zero["cer"], "wer": zero["wer"], "seconds": 0}]
    for steps in [int(value) for value in args.steps.split(",")]:
        for start in ("latin-print", "scratch"):
            model = args.out / f"{start}-{steps}.pt"
            how = ["--init", "latin-print"] if start == "latin-print" else ["--alphabet", str(alphabet),
                                                                            "--preset", "base", "--height", "32"]
            began = time.perf_counter()
            ctctool("train", str(train), "-o", str(model), "--run-dir", str(args.out / f"run-{start}-{steps}"),
                    "--max-steps", str(steps), "--seed", str(args.seed), "--threads", str(args.threads),
                    "--device", "cpu", "--quiet", *how)
            seconds = time.perf_counter() - began
            report = json.loads(ctctool("eval", str(model), str(test), "--json", "--threads", str(args.threads),
                                        capture=True))
            rows.append({"steps": steps, "start": "fine-tuned from latin-print" if start == "latin-print"
                         else "from scratch", "cer": report["cer"], "wer": report["wer"], "seconds": seconds})
    (args.out / "finetune.json").write_text(json.dumps(rows, indent=2))
    table = "| steps | start | test CER | test WER | training time (s) |\n|---|---|---|---|---|\n" + "".join(
        f"| {row['steps']} | {row['start']} | {100 * row['cer']:.2f}% | {100 * row['wer']:.2f}% | "
        f"{row['seconds']:.0f} |\n" for row in rows)
    (args.out / "finetune.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
