"""Size presets: parameters, model file size and CPU time per line (forward pass and greedy
decoding of the bundled OCR test lines, batch 16) and per training step, for each preset.

    python tests/bench/presets.py [--threads 1] [--repeats 3]

Weights are freshly initialized: speed does not depend on what a network has learned. The
presets are timed alternately, ``--repeats`` rounds, and the medians reported.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ctctool.codec import Codec  # noqa: E402
from ctctool.data import collate  # noqa: E402
from ctctool.features import default_extractor  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.model import SIZE_PRESETS, CTCRecognizer, ModelConfig, count_parameters  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    items = read_manifest(str(ROOT / "data/ocr/test.jsonl"))
    train_items = read_manifest(str(ROOT / "data/ocr/train.jsonl"))[:160]
    extractor = default_extractor("image")
    codec = Codec.from_texts(item.text for item in read_manifest(str(ROOT / "data/ocr/train.jsonl")))
    # Batches of lines of similar widths, as decode (sorted windows) and training (length
    # buckets) form them: the LSTM's cost follows the padded width.
    features = sorted((extractor.load(item).values for item in items), key=lambda values: values.shape[1])
    batches = [collate([(v, (1,), "x") for v in features[i:i + 16]]) for i in range(0, len(features), 16)]
    train_lines = sorted(((extractor.load(item).values, tuple(codec.encode(item.text))) for item in train_items),
                         key=lambda line: line[0].shape[1])
    train_batches = [collate([(values, labels, "x") for values, labels in train_lines[i:i + 16]])
                     for i in range(0, len(train_lines), 16)]
    networks = {}
    for name, shape in SIZE_PRESETS.items():
        networks[name] = CTCRecognizer(ModelConfig.for_modality("image", 32, codec.size, shape))
    infer: dict[str, list[float]] = {name: [] for name in networks}
    step: dict[str, list[float]] = {name: [] for name in networks}
    for _ in range(args.repeats):
        for name, network in networks.items():
            network.eval()
            started = time.perf_counter()
            with torch.inference_mode():
                for batch in batches:
                    log_probs, _ = network(batch.features, batch.lengths)
                    log_probs.argmax(-1)
            infer[name].append(1000 * (time.perf_counter() - started) / len(features))
            network.train()
            optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
            started = time.perf_counter()
            for batch in train_batches:
                log_probs, lengths = network(batch.features, batch.lengths)
                loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), batch.targets, lengths,
                                                    batch.target_lengths, zero_infinity=True)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            step[name].append((time.perf_counter() - started) / len(train_batches))
    print(f"| preset | conv channels | LSTM | parameters | model file | CPU ms per line ({args.threads} thread, "
          "batch 16, greedy) | training step (s, batch 16) |")
    print("|---|---|---|---|---|---|---|")
    for name, network in networks.items():
        shape = SIZE_PRESETS[name]
        buffer = io.BytesIO()
        torch.save(network.state_dict(), buffer)
        print(f"| {name} | {','.join(map(str, shape.channels))} | {shape.layers} x {shape.hidden} | "
              f"{count_parameters(network) / 1e6:.2f} M | {buffer.tell() / 1e6:.1f} MB | "
              f"{statistics.median(infer[name]):.2f} | {statistics.median(step[name]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
