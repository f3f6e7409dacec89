"""Training and test clips for the en-digits model, from every English synthetic voice Debian has.

    python data/en-digits/make_clips.py OUT_DIR [--train N] [--test N] [--workers N]

Utterances: one to six digits (zero to nine, and "oh" for zero in digit strings), or one or
two of the command words the bundled speech set has. Voices, by engine:
- espeak-ng: 8 English accents x 17 variants (formant voices and Klatt synthesis), speed
  130-210 words/min, pitch 25-75;
- flite: kal, kal16 (diphone), awb, rms, slt (clustergen voices built from recorded speakers),
  with duration stretch 0.8-1.25 and mean pitch moved by up to +-20%;
- festival: kal_diphone, ked_diphone and the HTS voice cmu_us_slt_arctic_hts, duration stretch
  0.8-1.25.
Each clip also gets a formant / pitch / speed change by resampling (factor 0.9-1.1, as if the
vocal tract were shorter or longer), is trimmed, set to a random level and written as 16 kHz
16-bit FLAC. Noise, reverberation, telephone band and VTLP are added at training time by
`--augment` (they must differ every epoch).

Held out of training, one group per engine, so "other voices" means it: espeak-ng's Caribbean
accent and variants f4, m6, klatt2 (as in data/speech), flite's rms and festival's ked_diphone.
Writes OUT_DIR/clips/*.flac, train.jsonl, val.jsonl (training voices, new utterances) and
heldout-{espeak,flite,festival}.jsonl. Needs: apt-get install espeak-ng flite festival
festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts. No recording of a human voice is used.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "speech"))
from make_speech_clips import ACCENTS, HELD_OUT_ACCENTS, HELD_OUT_VARIANTS, RATE, VARIANTS, WORDS  # noqa: E402

from ctctool.features.resample import resample  # noqa: E402

SEED = 20261202
DIGITS = "zero one two three four five six seven eight nine".split()
FLITE = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
HELD_OUT = {"flite": {"rms"}, "festival": {"ked_diphone"}}
PROGRAMS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
ENGINE_NAMES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}


def voices(engine: str, held_out: bool) -> list[str]:
    if engine == "espeak":
        return [accent + (f"+{variant}" if variant else "") for accent in ACCENTS for variant in VARIANTS
                if (accent in HELD_OUT_ACCENTS or variant in HELD_OUT_VARIANTS) == held_out]
    names = FLITE if engine == "flite" else FESTIVAL
    return [name for name in names if (name in HELD_OUT[engine]) == held_out]


def utterance(rng: random.Random) -> str:
    if rng.random() < 0.75:
        digits = [rng.choice(DIGITS) for _ in range(rng.randint(1, 6))]
        return " ".join("oh" if digit == "zero" and rng.random() < 0.3 else digit for digit in digits)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2)))


def speak(engine: str, voice: str, text: str, rng: random.Random, wav: Path) -> None:
    if engine == "espeak":
        command = ["espeak-ng", "-v", voice, "-s", str(rng.randint(130, 210)), "-p", str(rng.randint(25, 75)),
                   "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True)
    elif engine == "flite":
        command = ["flite", "-voice", voice, "--setf", f"duration_stretch={rng.uniform(0.8, 1.25):.2f}",
                   "--setf", f"int_f0_target_mean={rng.uniform(80, 200):.0f}", "-t", text, "-o", str(wav)]
        subprocess.run(command, check=True, capture_output=True)
    else:
        script = f"(voice_{voice}) (Parameter.set 'Duration_Stretch {rng.uniform(0.8, 1.25):.2f})"
        subprocess.run(["text2wave", "-eval", script, "-o", str(wav)], input=text.encode(), check=True,
                       capture_output=True)


def finish(samples: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """Mono, a vocal-tract / pitch / speed change by resampling, 16 kHz, trimmed, random level."""
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    warp = rng.uniform(0.9, 1.1)  # read at rate*warp as if it were rate: formants and pitch move by warp
    samples = resample(samples.astype(np.float32), int(round(rate / warp)), RATE)
    loud = np.flatnonzero(np.abs(samples) > 0.02 * max(1e-9, float(np.abs(samples).max())))
    if len(loud) == 0:
        raise RuntimeError("the synthesizer produced silence")
    lead, tail = int(rng.uniform(0.05, 0.25) * RATE), int(rng.uniform(0.05, 0.25) * RATE)
    samples = samples[max(0, loud[0] - lead): loud[-1] + tail]
    peak = 10 ** (rng.uniform(-20.0, -1.0) / 20)  # dBFS
    return (samples / np.abs(samples).max() * peak).astype(np.float32)


def make_clip(job: tuple[int, str, str, bool, str]) -> dict:
    """Clip ``index`` of ``split``: everything drawn from (SEED, split, index), so workers agree."""
    index, split, engine, held_out, out_dir = job
    rng = random.Random(f"{SEED}:{split}:{index}")
    text = utterance(rng)
    pool = voices(engine, held_out)
    voice = pool[rng.randrange(len(pool))]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        speak(engine, voice, text, rng, wav)
        samples, rate = soundfile.read(wav, dtype="float32")
    samples = finish(samples, rate, rng)
    name = f"{split}-{index:06d}.flac"
    soundfile.write(Path(out_dir) / "clips" / name, samples, RATE, subtype="PCM_16")
    return {"path": f"clips/{name}", "text": text, "duration": round(len(samples) / RATE, 3),
            "voice": f"{ENGINE_NAMES[engine]}:{voice}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=12000, help="training clips (a third per engine)")
    parser.add_argument("--test", type=int, default=300, help="clips per held-out engine set, and in val")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    missing = [program for program in PROGRAMS.values() if shutil.which(program) is None]
    if missing:
        print(f"{', '.join(missing)} not found: apt-get install espeak-ng flite festival festvox-kallpc16k "
              "festvox-kdlpc16k festvox-us-slt-hts", file=sys.stderr)
        return 1
    (args.out_dir / "clips").mkdir(parents=True, exist_ok=True)
    engines = list(PROGRAMS)
    splits = {"train": [(i, "train", engines[i % 3], False) for i in range(args.train)],
              "val": [(i, "val", engines[i % 3], False) for i in range(args.test)],
              **{f"heldout-{engine}": [(i, f"heldout-{engine}", engine, True) for i in range(args.test)]
                 for engine in engines}}
    with ProcessPoolExecutor(args.workers) as pool:
        for split, jobs in splits.items():
            records = list(pool.map(make_clip, [(*job, str(args.out_dir)) for job in jobs], chunksize=16))
            with open(args.out_dir / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in records)
            print(f"{split}: {len(records)} clips", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
