"""GPU check of the hardening work (run on a CUDA machine; not part of the suite).

    python tests/bench/gpu_hardening.py [--out /tmp/gpu-hardening]

Prints one JSON line per check: resume after a kill between checkpoints on CUDA (compared
with two uninterrupted runs, since cuDNN may not repeat itself bit for bit), non-finite
batches under bf16 autocast, and the hostile corpus through decode --keep-going on CUDA.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ctctool.errors import TrainingError  # noqa: E402
from ctctool.features.image import ImageFeatures  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.model import NetworkShape  # noqa: E402
from ctctool.train import TrainConfig, train  # noqa: E402

OCR = ROOT / "data" / "ocr"
SHAPE = NetworkShape(hidden=64, channels=(16, 32, 64, 64))


def report(**fields):
    print(json.dumps(fields), flush=True)


class _Stop(Exception):
    pass


class _StopAt:
    def __init__(self, step):
        self.at = step

    def start(self, total, done): ...
    def evaluated(self, step, metrics): ...
    def message(self, text): ...
    def close(self): ...

    def step(self, step, loss, rate):
        if step >= self.at:
            raise _Stop


class _Overflowing(ImageFeatures):
    def finish(self, item, prepared, rng=None, policy=None):  # training's per-epoch part of load
        features = super().finish(item, prepared, rng, policy)
        return type(features)(features.values * np.float32(3e38), features.axis, features.source_height)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "resume.pt", weights_only=True)["model"]


def max_diff(a, b) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/gpu-hardening")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = read_manifest(OCR / "train.jsonl")[:256]
    report(check="device", torch=torch.__version__, name=torch.cuda.get_device_name(0))

    config = TrainConfig(max_steps=40, batch_size=16, seed=3, eval_every=16)  # 16 batches per epoch

    def run(name, **kwargs):
        return train(items, output=str(out / name / "m.pt"), run_dir=str(out / name / "run"),
                     extractor=ImageFeatures(), config=config, shape=SHAPE, device="cuda", **kwargs)

    for deterministic in (False, True):
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = False
        tag = "det" if deterministic else "default"
        run(f"a-{tag}")
        run(f"b-{tag}")
        try:
            run(f"c-{tag}", monitor=_StopAt(25))  # checkpoints at 16, 32: killed mid-epoch, resumed from 16
        except _Stop:
            pass
        run(f"c-{tag}", resume=True)
        a, b, c = (weights(out / f"{x}-{tag}" / "run") for x in "abc")
        report(check="resume on cuda", cudnn_deterministic=deterministic, straight_vs_straight=max_diff(a, b),
               straight_vs_resumed=max_diff(a, c),
               bit_exact=all(torch.equal(a[k], c[k]) for k in a))

    small = TrainConfig(max_steps=4, batch_size=16, seed=1, eval_every=2)
    try:
        train(items[:64], output=str(out / "nan" / "m.pt"), run_dir=str(out / "nan" / "run"),
              extractor=_Overflowing(), config=small, shape=SHAPE, device="cuda")
        report(check="non-finite stops", ok=False)
    except TrainingError as exc:
        report(check="non-finite stops", ok=not (out / "nan" / "m.pt").exists(), message=str(exc)[:160])
    skipped = TrainConfig(max_steps=4, batch_size=16, seed=1, eval_every=4, skip_bad=True)
    train(items[:64], output=str(out / "skip" / "m.pt"), run_dir=str(out / "skip" / "run"),
          extractor=_Overflowing(), config=skipped, shape=SHAPE, device="cuda")
    saved = torch.load(out / "skip" / "m.pt", weights_only=True)["state_dict"]
    report(check="non-finite skipped", finite=all(bool(torch.isfinite(v).all()) for v in saved.values()
                                                  if v.is_floating_point()))

    from hostile import write_corpus
    from typer.testing import CliRunner

    from ctctool.cli import app

    corpus = out / "hostile"
    cases = write_corpus(corpus)
    runner = CliRunner()
    model = out / "a-default" / "m.pt"
    good = str(OCR / "lines" / "val-00000.png")
    results = {}
    for case in cases:
        if case.modality != "image":
            continue
        manifest = corpus / f"{case.kind}.jsonl"
        manifest.write_text("\n".join(json.dumps(r) for r in [{"path": good}, case.record, {"path": good}]) + "\n")
        result = runner.invoke(app, ["decode", str(model), str(manifest), "--format", "jsonl", "--keep-going",
                                     "--device", "cuda"])
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        results[case.kind] = result.exit_code == 3 and [("error" in r) for r in rows] == [False, True, False]
    report(check="hostile decode on cuda", all_ok=all(results.values()), cases=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
