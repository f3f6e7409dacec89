from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (the suite is deterministic); no example
# database is kept between runs. No deadline: hypothesis's default (200 ms an example) is a timed
# assertion, and on a shared 2-core machine beside two training runs a 4 s clip's chunked
# log-mel example took 260-350 ms and failed the suite (speed is measured in benchmarks).
settings.register_profile("ctctool", derandomize=True, database=None, deadline=None)
settings.load_profile("ctctool")

REPO = Path(__file__).resolve().parent.parent
OCR = REPO / "data" / "ocr"

os.environ.setdefault("CTCTOOL_THREADS", "2")


def copy_lines(split: str, count: int, dest: Path, name: str | None = None) -> Path:
    """The first ``count`` bundled lines of a split, copied with their images into ``dest``."""
    (dest / "lines").mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in (OCR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]]
    for record in records:
        shutil.copy(OCR / record["path"], dest / record["path"])
    manifest = dest / (name or f"{split}.jsonl")
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return manifest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {"root": root, "train": copy_lines("train", 48, root), "val": copy_lines("val", 8, root)}


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory) -> Path:
    """A small image model trained for a few steps: enough for every command's plumbing."""
    from ctctool.codec import Codec
    from ctctool.features import default_extractor
    from ctctool.manifest import read_manifest
    from ctctool.model import NetworkShape
    from ctctool.train import TrainConfig, train

    out = tmp_path_factory.mktemp("model") / "tiny.pt"
    items = read_manifest(tiny_data["train"])
    val_items = read_manifest(tiny_data["val"])
    codec = Codec.from_texts(item.text for item in [*items, *val_items])  # val may hold unseen characters
    train(items, codec=codec, output=str(out), run_dir=str(out.parent / "run"),
          extractor=default_extractor("image"), val_items=read_manifest(tiny_data["val"]),
          config=TrainConfig(max_steps=6, batch_size=8, seed=1, eval_every=6),
          shape=NetworkShape(hidden=32, channels=(8, 16, 16, 16)))
    return out
