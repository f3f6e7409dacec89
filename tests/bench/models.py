"""`make bench-models`: the bundled latin-print model against tesseract 5 on the same lines.

Lines: the latin-print recipe's held-out sets (runs/latin-print/heldout-{none,light,scan,heavy}),
rendered in five font families and from text that training never saw; the same lines at each
degradation level. Both recognizers run on one thread (OMP_THREAD_LIMIT=1 for tesseract,
torch.set_num_threads(1) for ctctool), one process each, so start-up is paid once:
tesseract in its list-file mode (`tesseract LIST stdout --psm 7 -l eng`), ctctool through
its library with the model already loaded. CPU time is the process's user+system time over
the whole set (getrusage), divided by the lines; the median of --rounds runs.

tesseract's `eng` model does not read accented letters (it returns the base letter), so the
table also gives CER on the lines that are plain ASCII, where both recognizers know every
character.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.metrics import ErrorSummary, score_line  # noqa: E402

LEVELS = ("none", "light", "scan", "heavy")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_tesseract(paths: list[str]) -> tuple[list[str], float]:
    """Texts in input order and the CPU seconds of the one tesseract process."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    before = children_cpu()
    result = subprocess.run(["tesseract", listing.name, "stdout", "--psm", "7", "-l", "eng"], env=env,
                            capture_output=True, text=True, check=True)
    seconds = children_cpu() - before
    os.unlink(listing.name)
    pages = result.stdout.split("\f")  # list mode ends every page's text with a form feed
    texts = [page.strip() for page in pages[: len(paths)]]
    if len(texts) != len(paths):
        raise SystemExit(f"tesseract returned {len(texts)} texts for {len(paths)} images")
    return texts, seconds


def run_ctctool(model, items, beam: int) -> tuple[list[str], float]:
    from ctctool.recognition import build_decode_options, decode_items

    options = build_decode_options(model.codec, beam=beam)
    before = own_cpu()
    texts = [result.text for result in decode_items(model, items, options=options)]
    return texts, own_cpu() - before


def score(items, texts, ascii_only: bool = False) -> ErrorSummary:
    summary = ErrorSummary()
    for item, text in zip(items, texts):
        if ascii_only and not item.text.isascii():
            continue
        summary.add(score_line(item.id, item.path, item.text, text))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, default=REPO / "runs" / "latin-print",
                        help="folder holding heldout-LEVEL/manifest.jsonl (make model-latin-print renders them)")
    parser.add_argument("--model", default="latin-print")
    parser.add_argument("--lines", type=int, default=200, help="lines per level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--beam", type=int, default=1, help="ctctool beam (1: greedy, as tesseract has no LM here)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "models")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        raise SystemExit("bench-models needs tesseract: apt-get install tesseract-ocr tesseract-ocr-eng")
    import torch

    from ctctool.checkpoint import load_model

    torch.set_num_threads(1)
    model = load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for level in LEVELS:
        manifest = args.sets / f"heldout-{level}" / "manifest.jsonl"
        if not manifest.exists():
            raise SystemExit(f"{manifest}: missing; render the held-out sets with make model-latin-print "
                             "(or: python data/latin-print/recipe.py build)")
        items = read_manifest(manifest)[: args.lines]
        paths = [item.resolved_path for item in items]
        seconds = {"ctctool": [], "tesseract": []}
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both
            ours, spent = run_ctctool(model, items, args.beam)
            seconds["ctctool"].append(spent)
            theirs, spent = run_tesseract(paths)
            seconds["tesseract"].append(spent)
        for name, texts in (("ctctool latin-print", ours), ("tesseract 5 eng", theirs)):
            key = "ctctool" if name.startswith("ctctool") else "tesseract"
            every, plain = score(items, texts), score(items, texts, ascii_only=True)
            rows.append({"level": level, "recognizer": name, "lines": every.lines, "cer": every.cer, "wer": every.wer,
                         "ascii_lines": plain.lines, "ascii_cer": plain.cer, "ascii_wer": plain.wer,
                         "cpu_ms_per_line": 1000 * statistics.median(seconds[key]) / len(items)})
    (args.out / "models.json").write_text(json.dumps(rows, indent=2))
    header = ("| degradation | recognizer | CER | WER | CER, ASCII-only lines | WER, ASCII-only lines | "
              "CPU ms per line (1 thread) |\n|---|---|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {row['level']} | {row['recognizer']} | {100 * row['cer']:.2f}% | {100 * row['wer']:.2f}% | "
        f"{100 * row['ascii_cer']:.2f}% | {100 * row['ascii_wer']:.2f}% | {row['cpu_ms_per_line']:.1f} |\n"
        for row in rows)
    note = (f"\n{len(items)} lines per level ({rows[0]['ascii_lines']} of them plain ASCII), held-out fonts and text; "
            f"ctctool beam {args.beam}; medians of {args.rounds} alternated rounds.\n")
    (args.out / "models.md").write_text(table + note)
    print(table + note)


if __name__ == "__main__":
    main()
