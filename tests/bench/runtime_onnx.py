"""`make bench`, part 3: the exported ONNX graph under onnxruntime against the PyTorch network,
on CPU, same inputs, same threads, alternated in one process (the machines are shared and
noisy: compare medians, and the ratio of the two measured side by side).

Two timings per runtime: the network alone on batches of features already read (what the
runtime changes), and the whole `decode_items` (read + features + network + greedy search).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ctctool.checkpoint import load_model  # noqa: E402
from ctctool.data import pad_batch  # noqa: E402
from ctctool.export import export_onnx  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.onnx_network import load_onnx_model  # noqa: E402
from ctctool.recognition import DecodeOptions, decode_items  # noqa: E402


def batches_of(model, items, batch_size=16):
    features = sorted((model.extractor.load(item).values for item in items), key=lambda v: v.shape[1])
    return [pad_batch(features[i:i + batch_size]) for i in range(0, len(features), batch_size)]


@torch.inference_mode()
def network_seconds(model, batches) -> float:
    start = time.perf_counter()
    for batch, lengths in batches:
        model.network(batch, lengths)
    return time.perf_counter() - start


def decode_seconds(model, items) -> tuple[float, list[str]]:
    start = time.perf_counter()
    with torch.inference_mode():
        texts = [r.text for r in decode_items(model, items, batch_size=16, options=DecodeOptions(beam=1))]
    return time.perf_counter() - start, texts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--model", default="latin-print")
    parser.add_argument("--manifest", default=str(REPO / "data" / "ocr" / "test.jsonl"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    items = read_manifest(args.manifest)
    folder = Path(tempfile.mkdtemp())
    onnx_path = folder / "model.onnx"
    report = export_onnx(load_model(args.model), str(onnx_path))
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        models = {"pytorch": load_model(args.model), "onnxruntime": load_onnx_model(str(onnx_path), threads=threads)}
        batches = batches_of(models["pytorch"], items)
        timings: dict[str, dict[str, list[float]]] = {name: {"network": [], "decode": []} for name in models}
        texts = {}
        for model in models.values():  # warm-up: first-call allocations, lazy kernels
            network_seconds(model, batches[:2])
        for _ in range(args.repeats):
            for name, model in models.items():
                timings[name]["network"].append(network_seconds(model, batches))
                seconds, texts[name] = decode_seconds(model, items)
                timings[name]["decode"].append(seconds)
        same = sum(a == b for a, b in zip(texts["pytorch"], texts["onnxruntime"]))
        for part in ("network", "decode"):
            torch_s = statistics.median(timings["pytorch"][part])
            ort_s = statistics.median(timings["onnxruntime"][part])
            rows.append({"threads": threads, "part": part, "lines": len(items),
                         "pytorch_ms_per_line": 1000 * torch_s / len(items),
                         "onnxruntime_ms_per_line": 1000 * ort_s / len(items),
                         "speedup": torch_s / ort_s, "same_text": f"{same}/{len(items)}",
                         "all_runs": {k: [round(x, 3) for x in v[part]] for k, v in timings.items()}})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# onnxruntime vs PyTorch on CPU ({args.model}, {len(items)} lines of {Path(args.manifest).name}, "
             f"batch 16, greedy; medians of {args.repeats} alternated runs)", "",
             f"ONNX file: {report['bytes'] / 1e6:.1f} MB, opset {report['opset']}, largest log-probability "
             f"difference from PyTorch on a padded batch: {report['max_abs_diff']:.1e}", "",
             "| threads | timed | PyTorch ms/line | onnxruntime ms/line | onnxruntime speed-up | same text |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        what = "network only" if row["part"] == "network" else "decode (read, features, network, greedy)"
        lines.append(f"| {row['threads']} | {what} | {row['pytorch_ms_per_line']:.2f} | "
                     f"{row['onnxruntime_ms_per_line']:.2f} | {row['speedup']:.2f}x | {row['same_text']} |")
    (out / "onnx.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "onnx.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print("\n".join(lines))
    return 0 if all(np.isfinite(row["speedup"]) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
