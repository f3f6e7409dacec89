"""What the network's bidirectional LSTM costs: ``LengthAwareLSTM`` (one-way passes over the
padded batch, the backward one over each input reversed within its length) against torch's
packed LSTM (``LengthAwareLSTM._packed``, what the network ran before 2026-12-06 and what ONNX
export still traces), with the same weights and inputs, alternated in one run, medians.

Training (forward and backward, dropout on) and inference (forward, no gradients) for the
default network's LSTM (2 layers of 128 per direction over 256 input features) on a batch of
16 inputs whose lengths lie within 70% of the longest, as length-bucketed training batches do.

    python tests/bench/lstm_cost.py --out bench-out [--threads 1] [--rounds 5] [--frames 100]

The table goes to OUT/lstm_cost/lstm_cost.md (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ctctool.model import LengthAwareLSTM  # noqa: E402

BATCH, FEATURES, HIDDEN, LAYERS, DROPOUT = 16, 256, 128, 2, 0.2


def timed(step, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``step``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_table(out: Path, name: str, table: str) -> None:
    """``table`` into OUT/NAME/NAME.md, and on stdout."""
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / f"{name}.md").write_text(table, encoding="utf-8")
    print(table)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=100, help="the longest input's LSTM frames")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lstm = LengthAwareLSTM(FEATURES, HIDDEN, num_layers=LAYERS, bidirectional=True, batch_first=True,
                           dropout=DROPOUT)
    lengths = torch.randint(int(0.7 * args.frames), args.frames + 1, (BATCH,))
    lengths[0] = args.frames
    inputs = torch.randn(BATCH, args.frames, FEATURES)
    with torch.no_grad():
        difference = float((lstm.eval()(inputs, lengths) - lstm._packed(inputs, lengths)).abs().max())
    paths = {"length-aware": lambda x: lstm(x, lengths), "packed": lambda x: lstm._packed(x, lengths)}

    def train_step(run):
        def step():
            lstm.train()
            x = inputs.clone().requires_grad_(True)
            run(x).square().sum().backward()
            lstm.zero_grad(set_to_none=True)
        return step

    def infer_step(run):
        def step():
            lstm.eval()
            with torch.no_grad():
                run(inputs)
        return step

    times: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        order = list(paths) if round_index % 2 == 0 else list(reversed(paths))
        for name in order:
            times.setdefault(("train", name), []).append(timed(train_step(paths[name]), 3))
            times.setdefault(("infer", name), []).append(timed(infer_step(paths[name]), 3))
    rows = []
    for mode, label in (("train", "training (forward + backward)"), ("infer", "inference (forward)")):
        ours = statistics.median(times[(mode, "length-aware")])
        packed = statistics.median(times[(mode, "packed")])
        ratios = [p / o for p, o in zip(times[(mode, "packed")], times[(mode, "length-aware")])]
        rows.append(f"| {label} | {1000 * packed:.1f} | {1000 * ours:.1f} | {statistics.median(ratios):.2f}x "
                    f"({', '.join(f'{r:.2f}' for r in ratios)}) |")
    table = "\n".join([
        f"# bidirectional LSTM, {LAYERS} x {HIDDEN} over {FEATURES} features, batch {BATCH}, "
        f"{int(lengths.min())}-{args.frames} frames, {args.threads} thread(s), {args.rounds} alternated rounds",
        "",
        "| pass | packed ms | length-aware ms | packed / length-aware, median (by round) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Largest output difference between the two (inference): {difference:.2g}",
        ""])
    write_table(Path(args.out), "lstm_cost", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
