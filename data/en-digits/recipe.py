"""The en-digits recipe (`make model-en-digits`): clips from every Debian English voice, train, card.

    python data/en-digits/recipe.py [--out runs/en-digits] [--steps N] [--device cuda]

Renders the clips (make_clips.py; skipped when --out already holds them), trains with the
`strong` augmentation preset (noise at several SNRs, room reverberation, telephone band,
VTLP, speed, gain, SpecAugment: data/speech's ablation found it the best preset on other
engines), evaluates on the validation voices and on each engine's held-out voices, with and
without a lexicon of the vocabulary, and writes ctctool/models/en-digits.{pt,json}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "data" / "latin-print"))
from recipe import run, write_card  # noqa: E402  (the shared recipe steps)

VOCABULARY = "zero oh one two three four five six seven eight nine yes no up down left right on off stop go".split()


def build(args: argparse.Namespace) -> None:
    out, ctctool = args.out, str(args.bin / "ctctool")
    if not (out / "heldout-festival.jsonl").exists():
        run([sys.executable, str(HERE / "make_clips.py"), str(out), "--train", str(args.clips),
             "--workers", str(args.workers)])
    lexicon = out / "lexicon.txt"
    lexicon.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    model = args.model or REPO / "ctctool" / "models" / "en-digits.pt"
    command = [ctctool, "train", str(out / "train.jsonl"), "--val", f"val={out / 'val.jsonl'}", "-o", str(model),
               "--run-dir", str(out / "run"), "--max-steps", str(args.steps), "--eval-every", "1000",
               "--augment", "strong", "--preset", "base", "--seed", str(args.seed), "--threads", str(args.threads),
               "--device", args.device, "--quiet"]
    if (out / "run").exists():
        command.append("--resume")
    seconds = run(command)
    eval_dir = out / "eval"
    eval_dir.mkdir(exist_ok=True)
    sets = [("val", "validation: training voices, new utterances", out / "val.jsonl"),
            *((f"heldout-{engine}", f"{engine} voices held out of training", out / f"heldout-{engine}.jsonl")
              for engine in ("espeak", "flite", "festival"))]
    metrics = {}
    for slug, name, manifest in sets:
        for suffix, extra in (("", []), ("+lexicon", ["--lexicon", str(lexicon)])):
            report_path = eval_dir / f"{slug}{suffix}.json"
            run([ctctool, "eval", str(model), str(manifest), "--json", "--threads", str(args.threads), *extra],
                log=report_path)
            report = json.loads(report_path.read_text())
            metrics[slug + suffix] = {"set": name + (", digits-and-words lexicon" if suffix else ""),
                                      "wer": round(report["wer"], 5), "cer": round(report["cer"], 5),
                                      "lines": report["lines"]}
    write_card(Path(model), HERE / "card.json", metrics, args, seconds)
    print(json.dumps(metrics, indent=2), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "en-digits")
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--model", type=Path, help="write here instead of ctctool/models/en-digits.pt")
    parser.add_argument("--clips", type=int, default=12000, help="training clips")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes rendering clips")
    parser.add_argument("--device", default="auto")
    try:
        build(parser.parse_args())
    except subprocess.CalledProcessError as exc:
        sys.exit(f"recipe: step failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}")


if __name__ == "__main__":
    main()
