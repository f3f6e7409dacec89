"""`make bench-digits`: a speech model against PocketSphinx 5 with a digit grammar, per voice family.

Sets: the en-digits recipe's held-out voices (runs/en-digits/heldout-{espeak,flite,festival}.jsonl),
each also with white noise at 20 and 10 dB SNR and in the telephone band (8 kHz, 300-3400 Hz),
made here with a fixed seed. ctctool runs without and with a lexicon of the vocabulary;
PocketSphinx 5 (its bundled en-us acoustic model) with a JSGF grammar that accepts any
sequence of the vocabulary's words, which is the same constraint. WER per set.

    python tests/bench/digits.py [--model en-digits] [--sets runs/en-digits] [--out bench-out/digits]

PocketSphinx runs in its own environment (a peer, not a dependency): --peer-python names
its interpreter (make bench-digits creates .venv-digits with `pip install pocketsphinx`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ctctool.features.resample import resample  # noqa: E402
from ctctool.manifest import read_manifest  # noqa: E402
from ctctool.metrics import ErrorSummary, score_line  # noqa: E402

RATE = 16000
VOCABULARY = "zero oh one two three four five six seven eight nine yes no up down left right on off stop go".split()
CONDITIONS = ("clean", "noise 20 dB", "noise 10 dB", "telephone")

# Run by the peer's interpreter: reads a JSON list of WAV paths on stdin, prints one hypothesis per line.
SPHINX = r"""
import json, sys
import numpy as np, soundfile
from pocketsphinx import Decoder
grammar = sys.argv[1]
decoder = Decoder(jsgf=grammar, samprate=16000, logfn="/dev/null")
for path in json.load(sys.stdin):
    samples, rate = soundfile.read(path, dtype="int16")
    decoder.start_utt()
    decoder.process_raw(samples.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    print(hyp.hypstr if hyp is not None else "", flush=True)
"""


def grammar_text() -> str:
    return ("#JSGF V1.0;\ngrammar digits;\npublic <utterance> = ( " + " | ".join(VOCABULARY) + " )+ ;\n")


def condition(samples: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    if name.startswith("noise"):
        snr_db = float(name.split()[1])
        power = float(np.mean(samples ** 2)) or 1e-12
        return samples + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples)).astype(np.float32)
    if name == "telephone":
        narrow = resample(samples, RATE, 8000)
        spectrum = np.fft.rfft(narrow)
        freqs = np.fft.rfftfreq(len(narrow), 1 / 8000)
        spectrum[(freqs < 300) | (freqs > 3400)] = 0
        return resample(np.fft.irfft(spectrum, len(narrow)).astype(np.float32), 8000, RATE)
    return samples


def write_condition(items, name: str, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261202)
    paths = []
    for index, item in enumerate(items):
        samples, rate = soundfile.read(item.resolved_path, dtype="float32")
        samples = condition(resample(samples, rate, RATE) if rate != RATE else samples, name, rng)
        peak = max(1e-6, float(np.abs(samples).max()))
        path = folder / f"{index:05d}.wav"
        soundfile.write(path, samples / peak * 0.7 if peak > 1 else samples, RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def wer(items, texts) -> float:
    summary = ErrorSummary()
    for item, text in zip(items, texts):
        summary.add(score_line(item.id, item.path, item.text, text))
    return summary.wer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="en-digits")
    parser.add_argument("--sets", type=Path, default=REPO / "runs" / "en-digits")
    parser.add_argument("--names", default="heldout-espeak,heldout-flite,heldout-festival")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--peer-python", default=str(REPO / ".venv-digits" / "bin" / "python"))
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "digits")
    args = parser.parse_args()
    import torch

    from ctctool.checkpoint import load_model
    from ctctool.manifest import items_from_paths
    from ctctool.recognition import build_decode_options, decode_items

    torch.set_num_threads(1)
    model = load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    grammar = args.out / "digits.gram"
    grammar.write_text(grammar_text())
    lexicon = args.out / "lexicon.txt"
    lexicon.write_text("\n".join(VOCABULARY) + "\n")
    plain = build_decode_options(model.codec)
    constrained = build_decode_options(model.codec, lexicon=str(lexicon))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names.split(","):
            items = read_manifest(args.sets / f"{name}.jsonl")[: args.lines]
            for cond in CONDITIONS:
                paths = write_condition(items, cond, Path(tmp) / name / cond.replace(" ", "-"))
                clips = list(items_from_paths([(str(p), str(p)) for p in paths], root="."))
                ours = [r.text for r in decode_items(model, clips, options=plain)]
                ours_lex = [r.text for r in decode_items(model, clips, options=constrained)]
                sphinx = subprocess.run([args.peer_python, "-c", SPHINX, str(grammar)], check=True, text=True,
                                        input=json.dumps([str(p) for p in paths]), capture_output=True).stdout
                theirs = sphinx.splitlines()
                rows.append({"set": name, "condition": cond, "clips": len(items), "ctctool": wer(items, ours),
                             "ctctool_lexicon": wer(items, ours_lex), "pocketsphinx_grammar": wer(items, theirs)})
                print(rows[-1], file=sys.stderr, flush=True)
    (args.out / "digits.json").write_text(json.dumps(rows, indent=2))
    table = ("| held-out voices | condition | ctctool WER | ctctool + lexicon WER | PocketSphinx 5 + JSGF WER |\n"
             "|---|---|---|---|---|\n" + "".join(
                 f"| {r['set']} | {r['condition']} | {100 * r['ctctool']:.2f}% | {100 * r['ctctool_lexicon']:.2f}% | "
                 f"{100 * r['pocketsphinx_grammar']:.2f}% |\n" for r in rows))
    (args.out / "digits.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
