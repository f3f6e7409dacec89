"""Synthesize the bundled speech set: spoken digit strings and short command words.

    python data/speech/make_speech_clips.py        # or: make data-speech

Needs espeak-ng (Debian package espeak-ng), used here only; ctctool never runs it. Each clip
is synthesized with one English accent and one voice variant at a random speed and pitch,
trimmed, resampled to 16 kHz with ctctool's own resampler, peak-normalized at a random level
and stored as 8-bit FLAC (the quantization noise, about 40 dB under the speech, is the light
noise; 8-bit keeps the 1,550 clips under 10 MB). Deterministic for a given espeak-ng build.

Held-out voices: the Caribbean accent (en-029) and the variants f4, m6 and klatt2 never occur
in train or val; test-heldout.jsonl uses only them.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from ctctool.features.resample import resample  # noqa: E402

RATE = 16000  # Hz
SEED = 20261128
DIGITS = "zero one two three four five six seven eight nine".split()
WORDS = "yes no up down left right on off stop go".split()
ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-029"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt4", "croak"]
HELD_OUT_ACCENTS = {"en-029"}
HELD_OUT_VARIANTS = {"f4", "m6", "klatt2"}
SPLITS = {"train": 1300, "val": 100, "test-heldout": 150}


def voices(held_out: bool) -> list[str]:
    out = []
    for accent in ACCENTS:
        for variant in VARIANTS:
            unseen = accent in HELD_OUT_ACCENTS or variant in HELD_OUT_VARIANTS
            if unseen == held_out:
                out.append(accent + (f"+{variant}" if variant else ""))
    return out


def utterance(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return " ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 4)))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2)))


def synthesize(text: str, voice: str, rng: random.Random, workdir: Path) -> np.ndarray:
    wav = workdir / "clip.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(130, 210)), "-p", str(rng.randint(25, 75)),
                    "-w", str(wav), text], check=True, capture_output=True)
    samples, rate = soundfile.read(wav, dtype="float32")
    return finish(samples, rate, rng)


def finish(samples: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """Resample to RATE, trim the synthesizer's silence, normalize to a random level, dither."""
    samples = resample(samples, rate, RATE)
    # trim silence beyond 0.05-0.2 s at each end (espeak pads generously)
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    lead, tail = int(rng.uniform(0.05, 0.2) * RATE), int(rng.uniform(0.05, 0.2) * RATE)
    samples = samples[max(0, loud[0] - lead): loud[-1] + tail]
    peak = 10 ** (rng.uniform(-6.0, -1.0) / 20)  # dBFS
    samples = samples / np.abs(samples).max() * peak
    dither = np.random.default_rng(rng.getrandbits(32)).uniform(-0.5, 0.5, len(samples)) / 128  # 1 LSB, 8-bit
    return np.clip(samples + dither, -1.0, 1.0).astype(np.float32)


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found: apt-get install espeak-ng", file=sys.stderr)
        return 1
    rng = random.Random(SEED)
    out_dir = HERE / "clips"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        for split, count in SPLITS.items():
            pool = voices(held_out=split == "test-heldout")
            records = []
            for n in range(count):
                text = utterance(rng)
                voice = pool[rng.randrange(len(pool))]
                samples = synthesize(text, voice, rng, Path(tmp))
                name = f"{split}-{n:05d}.flac"
                soundfile.write(out_dir / name, samples, RATE, subtype="PCM_S8")
                records.append({"path": f"clips/{name}", "text": text, "duration": int(1000 * len(samples) / RATE) / 1000,
                                "voice": voice})
            with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record) + "\n")
            print(f"{split}: {count} clips, {len(pool)} voices", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
