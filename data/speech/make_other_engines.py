"""Speak the bundled kind of utterances with other speech engines: flite and festival.

    python data/speech/make_other_engines.py        # or: make data-speech-engines

The bundled clips all come from espeak-ng. A model that has only heard espeak-ng learns its
formant synthesis as much as the words; these clips (same vocabulary, same post-processing:
trim, 16 kHz, random level, 8-bit FLAC) come from flite's voices (kal, kal16, awb, rms, slt:
diphone and clustergen voices built from recordings of real speakers) and festival's
kal_diphone, at random speaking rates. ``test-engines.jsonl`` is the "other voices" figure
next to the validation one; no clip of it is ever trained on.

Needs flite and festival (Debian packages flite, festival, festvox-kallpc16k), used here only.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_speech_clips import RATE, finish, utterance  # noqa: E402

SEED = 20261201
COUNT = 150
VOICES = ["flite:kal", "flite:kal16", "flite:awb", "flite:rms", "flite:slt", "festival:kal_diphone"]


def speak(text: str, voice: str, stretch: float, wav: Path) -> None:
    engine, name = voice.split(":")
    if engine == "flite":
        command = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch:.2f}", "-t", text, "-o", str(wav)]
        subprocess.run(command, check=True, capture_output=True)
    else:
        script = f"(voice_{name}) (Parameter.set 'Duration_Stretch {stretch:.2f})"
        subprocess.run(["text2wave", "-eval", script, "-o", str(wav)], input=text.encode(), check=True,
                       capture_output=True)


def main() -> int:
    for program in ("flite", "text2wave"):
        if shutil.which(program) is None:
            print(f"{program} not found: apt-get install flite festival festvox-kallpc16k", file=sys.stderr)
            return 1
    rng = random.Random(SEED)
    out_dir = HERE / "clips-engines"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        for n in range(COUNT):
            text = utterance(rng)
            voice = VOICES[n % len(VOICES)]
            speak(text, voice, rng.uniform(0.8, 1.25), wav)
            samples, rate = soundfile.read(wav, dtype="float32")
            samples = finish(samples, rate, rng)
            name = f"engines-{n:05d}.flac"
            soundfile.write(out_dir / name, samples, RATE, subtype="PCM_S8")
            records.append({"path": f"clips-engines/{name}", "text": text,
                            "duration": int(1000 * len(samples) / RATE) / 1000, "voice": voice})
    with open(HERE / "test-engines.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    print(f"test-engines: {len(records)} clips, {len(VOICES)} voices", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
