"""What the convolutions' memory layout costs: the network as it is built (conv weights, and so
every conv block's activations, channels-last) against the same weights in torch's default
contiguous layout, what the network ran before 2026-12-07; alternated in one run, medians.

For the default image network (32 rows, 80 classes) and audio network (64 mel bands, 30
classes), a training pass (forward, CTC loss, backward, dropout on) and a reading pass (forward
in inference mode) over batches of 16 inputs whose lengths lie within 70% of the longest, as
length-bucketed training batches do, at several widths.

    python tests/bench/layout_cost.py --out bench-out [--threads 1] [--rounds 5] [--device cuda]

On CUDA (``device_check.sh``) the passes run under bf16 autocast, as training does there, and
each is timed to the device's end (synchronized).

The table goes to OUT/layout_cost/layout_cost.md (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lstm_cost import timed, write_table  # noqa: E402

from ctctool.model import CTCRecognizer, ModelConfig  # noqa: E402

BATCH, LABELS = 16, 12
# (modality, feature rows, classes, longest inputs of the batches timed, in frames)
NETWORKS = (("image", 32, 80, (160, 260, 400)), ("audio", 64, 30, (150, 220, 300)))


def batches(rows: int, classes: int, widths: tuple[int, ...]) -> list[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for width in widths:
        lengths = torch.randint(int(0.7 * width), width + 1, (BATCH,), generator=generator)
        lengths[0] = width
        features = torch.rand(BATCH, 1, rows, width, generator=generator)
        targets = torch.randint(1, classes, (BATCH, LABELS), generator=generator)
        out.append((features, lengths, targets))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows_out, differences = [], []
    for modality, rows, classes, widths in NETWORKS:
        built = CTCRecognizer(ModelConfig.for_modality(modality, rows, classes)).to(device)
        contiguous = copy.deepcopy(built)
        contiguous.conv.to(memory_format=torch.contiguous_format)
        assert all(p.is_contiguous() for p in contiguous.parameters())
        networks = {"channels-last": built, "contiguous": contiguous}
        data = [tuple(tensor.to(device) for tensor in batch) for batch in batches(rows, classes, widths)]
        with torch.inference_mode():
            features, lengths, _ = data[-1]
            built.eval(), contiguous.eval()
            differences.append((modality, float((built(features, lengths)[0]
                                                  - contiguous(features, lengths)[0]).abs().max())))

        def train_pass(network, data=data):
            def step():
                network.train()
                for features, lengths, targets in data:
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                        log_probs, out_lengths = network(features, lengths)
                    loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths,
                                      torch.full((BATCH,), LABELS, device=device), zero_infinity=True)
                    loss.backward()
                    network.zero_grad(set_to_none=True)
                if cuda:
                    torch.cuda.synchronize()
            return step

        def read_pass(network, data=data):
            def step():
                network.eval()
                with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                            enabled=cuda):
                    for features, lengths, _ in data:
                        network(features, lengths)
                if cuda:
                    torch.cuda.synchronize()
            return step

        times: dict[tuple[str, str], list[float]] = {}
        for round_index in range(args.rounds):
            order = list(networks) if round_index % 2 == 0 else list(reversed(networks))
            for name in order:
                times.setdefault(("train", name), []).append(timed(train_pass(networks[name]), 3) / len(data))
                times.setdefault(("read", name), []).append(timed(read_pass(networks[name]), 3) / len(data))
        for mode, label in (("train", "training step (forward + loss + backward)"), ("read", "reading (forward)")):
            before = times[(mode, "contiguous")]
            after = times[(mode, "channels-last")]
            ratios = [a / b for a, b in zip(after, before)]
            rows_out.append(f"| {modality} | {label} | {1000 * statistics.median(before):.1f} | "
                            f"{1000 * statistics.median(after):.1f} | {statistics.median(ratios):.2f}x "
                            f"({', '.join(f'{r:.2f}' for r in ratios)}) |")
    table = "\n".join([
        f"# conv layout, default networks, batch {BATCH}, longest inputs {NETWORKS[0][3]} (image) and "
        f"{NETWORKS[1][3]} (audio) frames, {args.device}"
        + (" (bf16 autocast)" if cuda else f", {args.threads} thread(s)") + f", {args.rounds} alternated rounds",
        "",
        "| network | pass | contiguous ms | channels-last ms | channels-last / contiguous, median (by round) |",
        "|---|---|---|---|---|",
        *rows_out,
        "",
        "Largest log-probability difference between the two layouts (reading): "
        + ", ".join(f"{modality} {difference:.2g}" for modality, difference in differences),
        ""])
    write_table(Path(args.out), "layout_cost", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
