"""`make bench`, part 2: torch threads 1 vs 2 for training steps and for inference, measured
alternately in one process (the machines are shared and noisy: compare medians)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ctctool.checkpoint import load_model  # noqa: E402
from ctctool.evaluation import evaluate_items  # noqa: E402
from ctctool.features import default_extractor  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.recognition import DecodeOptions  # noqa: E402
from ctctool.train import TrainConfig, train  # noqa: E402

OCR = Path(__file__).resolve().parents[2] / "data" / "ocr"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    items = read_manifest(OCR / "train.jsonl")[:800]
    test = read_manifest(OCR / "test.jsonl")
    folder = Path(tempfile.mkdtemp())
    steps = 40
    timings: dict[str, dict[int, list[float]]] = {"train s/40 steps": {1: [], 2: []}, "eval s/200 lines": {1: [], 2: []}}
    for repeat in range(args.repeats):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            train(items, output=str(folder / "m.pt"), run_dir=str(folder / f"run{repeat}{threads}"),
                  extractor=default_extractor("image"), config=TrainConfig(max_steps=steps, seed=repeat))
            timings["train s/40 steps"][threads].append(time.perf_counter() - start)
            model = load_model(str(folder / "m.pt"))
            start = time.perf_counter()
            evaluate_items(model, test, options=DecodeOptions(beam=16))
            timings["eval s/200 lines"][threads].append(time.perf_counter() - start)
    lines = ["| measure | 1 thread | 2 threads | 1 / 2 |", "|---|---|---|---|"]
    for name, by_threads in timings.items():
        one, two = statistics.median(by_threads[1]), statistics.median(by_threads[2])
        lines.append(f"| {name} (median of {args.repeats}) | {one:.2f} | {two:.2f} | {one / two:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
