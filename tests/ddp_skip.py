"""Run under torchrun by test_hardening: rank 1's batches overflow, rank 0's do not.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_skip.py TRAIN OUT [--skip-bad]

With --skip-bad every rank must skip the same steps (else one would wait forever in the
gradient all-reduce); without it every rank must stop with the same TrainingError.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctctool.errors import TrainingError  # noqa: E402
from ctctool.features.image import ImageFeatures  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.model import NetworkShape  # noqa: E402
from ctctool.train import TrainConfig, train  # noqa: E402


class OverflowOnRankOne(ImageFeatures):
    def finish(self, item, prepared, rng=None, policy=None):  # training's per-epoch part of load
        features = super().finish(item, prepared, rng)
        if os.environ.get("RANK") == "1":
            return type(features)(features.values * np.float32(3e38), features.axis, features.source_height)
        return features


def main() -> int:
    train_manifest, out = sys.argv[1], Path(sys.argv[2])
    skip_bad = "--skip-bad" in sys.argv
    config = TrainConfig(max_steps=4, batch_size=4, seed=1, eval_every=4, skip_bad=skip_bad, augment=False)
    try:
        result = train(read_manifest(train_manifest), output=str(out / "m.pt"), run_dir=str(out / "run"),
                       extractor=OverflowOnRankOne(), config=config,
                       shape=NetworkShape(hidden=16, channels=(8, 8, 8)), device="cpu")
    except TrainingError as exc:
        print(f"rank {os.environ.get('RANK')}: stopped: {exc}", flush=True)
        return 0
    print(f"rank {os.environ.get('RANK')}: finished {result.steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
