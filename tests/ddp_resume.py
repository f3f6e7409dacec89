"""Run under torchrun by test_hardening: two CPU ranks (gloo) train, are interrupted, resume,
or lose a rank.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_resume.py \
        TRAIN VAL OUT straight|interrupt|resume|fail

straight: 8 steps. interrupt: the same run stopped on every rank at step 6 (after the
checkpoint at 4), as a kill between checkpoints would. resume: continue the interrupted run
to step 8. fail: rank 1's data loading raises at its third batch while rank 0 goes on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stop_at import Interrupt, StopAt  # noqa: E402  (tests/, this script's folder)

from ctctool.errors import FeatureError  # noqa: E402
from ctctool.features.image import ImageFeatures  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.model import NetworkShape  # noqa: E402
from ctctool.train import TrainConfig, train  # noqa: E402


class FailOnRankOne(ImageFeatures):
    loads = 0

    def finish(self, item, prepared, rng=None, policy=None):  # training's per-epoch part of load
        if os.environ.get("RANK") == "1":
            FailOnRankOne.loads += 1
            if FailOnRankOne.loads > 8:  # batch size 4: the third batch
                raise FeatureError(item.where, "path: simulated disk failure on rank 1")
        return super().finish(item, prepared, rng, policy)


def main() -> int:
    train_manifest, val_manifest, out, mode = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    config = TrainConfig(max_steps=8, batch_size=4, seed=3, eval_every=4, augment=False)
    try:
        result = train(read_manifest(train_manifest), output=str(out / "m.pt"), run_dir=str(out / "run"),
                       val_items=read_manifest(val_manifest),
                       extractor=FailOnRankOne() if mode == "fail" else ImageFeatures(), config=config,
                       shape=NetworkShape(hidden=16, channels=(8, 8, 8)), device="cpu",
                       resume=mode == "resume", monitor=StopAt(6) if mode == "interrupt" else None)
    except Interrupt:
        print(f"rank {os.environ.get('RANK')}: interrupted", flush=True)
        return 0
    print(f"rank {os.environ.get('RANK')}: finished {result.steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
