"""GPU check (run on a machine with CUDA): bf16 autocast training, CUDA inference, and how fast
the bundled models train there. Not part of the test suite; prints one JSON line per step.

    python tests/bench/gpu_check.py [--ocr-epochs 10] [--speech-epochs 25]
"""

from __future__ import annotations

import argparse
import json
import sys
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

DATA = Path(__file__).resolve().parents[2] / "data"


def report(**fields):
    print(json.dumps(fields), flush=True)


def run(name, modality, epochs, out_dir, amp, workers, tests):
    folder = DATA / ("ocr" if modality == "image" else "speech")
    started = time.perf_counter()
    result = train(read_manifest(folder / "train.jsonl"), output=str(out_dir / f"{name}.pt"),
                   run_dir=str(out_dir / f"{name}-run"), extractor=default_extractor(modality),
                   val_items=read_manifest(folder / "val.jsonl"),
                   config=TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, amp=amp, num_workers=workers),
                   device="cuda")
    seconds = time.perf_counter() - started
    model = load_model(str(out_dir / f"{name}.pt"), "cuda")
    scores = {}
    for test in tests:
        report_ = evaluate_items(model, read_manifest(folder / test), batch_size=64, device="cuda",
                                 options=DecodeOptions(beam=16))
        scores[test] = {"cer": round(report_.summary.cer, 4), "wer": round(report_.summary.wer, 4)}
    report(step=name, amp=amp, epochs=epochs, train_seconds=round(seconds, 1), steps=result.steps,
           best_val_cer=result.best_val_cer, history=[(h["step"], h["cer"], h["wer"]) for h in result.history],
           scores=scores)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ocr-epochs", type=int, default=10)
    parser.add_argument("--speech-epochs", type=int, default=25)
    parser.add_argument("--out", default="/tmp/gpu-check")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--skip-ocr", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report(step="device", torch=torch.__version__, cuda=torch.cuda.is_available(),
           name=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    if not args.skip_ocr:
        run("ocr-bf16", "image", args.ocr_epochs, out, True, args.workers, ["val.jsonl", "test.jsonl"])
        run("ocr-fp32", "image", 2, out, False, args.workers, ["val.jsonl"])
    run("speech-bf16", "audio", args.speech_epochs, out, True, args.workers, ["val.jsonl", "test-heldout.jsonl"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
