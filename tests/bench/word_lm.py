"""Word LM in the beam search, side by side with pyctcdecode 0.5.0 + kenlm (part of `make bench`).

Two stages, two environments:

1. ``posteriors`` (ctctool's environment, which has torch): real model posteriors for
   - ``ocr``: the bundled latin-print model on all 3,000 bundled OCR lines (``data/ocr`` train,
     val, test and unseen-fonts sets: renderings it never trained on) after a seeded
     "scan"-level degradation;
   - ``speech``: the bundled en-digits model on the held-out espeak-ng voices and the other
     engines' voices (``data/speech/test-heldout``, ``test-engines``).
   and the LMs, built from text that holds none of the test transcripts: a word trigram ARPA
   (``ctctool lm build --word``) and a character LM (``ctctool lm build``).
2. ``decode`` (the peers' environment: pyctcdecode, kenlm; ctctool from this checkout): each set
   is split in two by transcript (a hash of the text: a text read twice, as the bundled sets
   do, lands in one half). Every decoder gets its alpha / beta
   tuned on validation at beam 32 (a grid), then runs on test at beams 32 and 128: WER, CER and
   single-thread seconds (median of 3 passes). Decoders: ctctool without LM, with the character
   LM, with the word LM; pyctcdecode without LM and with the same ARPA file through kenlm.

    python tests/bench/word_lm.py --out bench-out --peer-python .venv-bench/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ALPHAS = (0.1, 0.3, 0.5, 0.8, 1.2)
BETAS = (0.0, 1.0, 2.5, 4.0)
UNK_OFFSETS = (-1.0, -3.0, -6.0, -10.0)  # each decoder's own unk offset (pyctcdecode's is scaled by alpha)
CHAR_ALPHAS = (0.1, 0.2, 0.4, 0.7)
CHAR_BETAS = (0.0, 1.0, 2.0)
# pyctcdecode 0.5.0's defaults: a frame's symbols below ln p -5 are skipped (token_min_logp),
# prefixes 10 nats below the best dropped (beam_prune_logp); ctctool's --prune and --beam-prune.
PEER_TOKEN_MIN_LOGP = -5.0
PEER_BEAM_PRUNE = 10.0
PEER = "pyctcdecode + kenlm word LM"
PEER_PRUNED = "ctctool + word LM, pyctcdecode's pruning (--prune -5 --beam-prune 10)"


# ---------------------------------------------------------------- stage 1: posteriors and LMs


def _degrade_lines(manifests: list[Path], out: Path, level_name: str = "scan") -> Path:
    """Copies of the manifests' line images after a seeded degradation (one RNG per line)."""
    import numpy as np
    from PIL import Image

    from ctctool.synth import degrade

    level = degrade.LEVELS[level_name]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for manifest in manifests:
        for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            source = manifest.parent / row["path"]
            image = np.asarray(Image.open(source).convert("L"), dtype=np.float32) / 255.0
            rng = random.Random(f"{manifest.name}:{number}")
            for operation in (degrade.low_resolution, degrade.blur, degrade.gaussian_noise,
                              degrade.salt_and_pepper, degrade.jpeg):
                image = operation(image, rng, level)
            name = f"{manifest.stem}-{number:05d}.png"
            Image.fromarray(degrade.to_uint8(image), "L").save(out / name)
            rows.append({"path": name, "text": row["text"]})
    path = out / "lines.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


_HEAD = 15  # characters: a test transcript this long or longer is also kept out where it is part of a line


def _lm_text(sources: list[tuple[Path, str]], tests: set[str], out: Path) -> Path:
    """LM training text: manifest transcripts and text files, without any line that is a test
    transcript or holds one of 15 characters or more."""
    lines = []
    # A long test transcript inside a line starts with one of the line's 15-character windows:
    # index the transcripts by their first 15 characters, so each line costs one dictionary
    # lookup per window instead of a substring search per test transcript.
    by_head: dict[str, list[str]] = {}
    for test in tests:
        if len(test) >= _HEAD:
            by_head.setdefault(test[:_HEAD], []).append(test)

    def holds_test(text: str) -> bool:
        return any(test in text for start in range(len(text) - _HEAD + 1)
                   for test in by_head.get(text[start:start + _HEAD], ()))

    for path, kind in sources:
        if kind == "manifest":
            texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
        else:
            texts = path.read_text(encoding="utf-8").splitlines()
        lines += [t for t in texts if t.strip() and t not in tests and not holds_test(t)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def posteriors(out: Path) -> None:
    import numpy as np

    import ctctool
    from ctctool.inference import run_network
    from ctctool.manifest import read_manifest

    out.mkdir(parents=True, exist_ok=True)
    # Every bundled OCR line set: none was in latin-print's training renderings, and 3,000 lines
    # (14,000 words) make a one-word difference 0.01 points of WER instead of 0.1.
    ocr_tests = [REPO / f"data/ocr/{name}.jsonl" for name in ("test", "test-unseen-fonts", "val", "train")]
    speech_tests = [REPO / "data/speech/test-heldout.jsonl", REPO / "data/speech/test-engines.jsonl"]
    sets = {
        "ocr": ("latin-print", _degrade_lines(ocr_tests, out / "ocr-scan"),
                [(REPO / "data/latin-print/train.txt", "text")]),
        "speech": ("en-digits", None, [(REPO / "data/speech/train.jsonl", "manifest")]),
    }
    for name, (model_name, manifest, lm_sources) in sets.items():
        model = ctctool.load_model(model_name)
        items = list(read_manifest(str(manifest))) if manifest else \
            [item for path in speech_tests for item in read_manifest(str(path))]
        texts = [item.text for item in items]
        arrays = {}
        for k, output in enumerate(run_network(model, items, batch_size=16)):
            if output.error is not None:
                raise SystemExit(f"{output.item.path}: {output.error}")
            arrays[f"lp{k}"] = output.log_probs.astype(np.float32)
        np.savez(out / f"{name}-posteriors.npz", **arrays)
        (out / f"{name}-meta.json").write_text(json.dumps({"labels": list(model.codec.labels), "texts": texts,
                                                         "model": model_name}), encoding="utf-8")
        corpus = _lm_text(lm_sources, set(texts), out / f"{name}-lm.txt")
        for extra, target in ((["--word", "--order", "3"], f"{name}-words.arpa"), ([], f"{name}-chars.npz")):
            subprocess.run([sys.executable, "-m", "ctctool", "lm", "build", str(corpus), "-o", str(out / target),
                            *extra], check=True, capture_output=True)
        print(f"{name}: {len(items)} items, LM text {sum(1 for _ in corpus.open())} lines", flush=True)


# ---------------------------------------------------------------- stage 2: decoding


def edits(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def error_rates(hypotheses, references) -> tuple[float, float]:
    words = sum(edits(h.split(), r.split()) for h, r in zip(hypotheses, references))
    chars = sum(edits(h, r) for h, r in zip(hypotheses, references))
    return (words / max(1, sum(len(r.split()) for r in references)),
            chars / max(1, sum(len(r) for r in references)))


class Decoders:
    """name -> (make(alpha, beta, unk, beam) -> decode(log_probs) -> text, kind of LM)."""

    def __init__(self, folder: Path, name: str, labels: list[str]):
        from ctctool.decoding import prefix_beam_search
        from ctctool.decoding.constants import DEFAULT_PRUNE_LOG_PROB
        from ctctool.decoding.scorers import CharNgramLM, compile_scorers
        from ctctool.decoding.word_tables import bind_word_lm, load_word_lm_tables

        self.labels = labels
        arpa = str(folder / f"{name}-words.arpa")
        started = time.perf_counter()
        tables = load_word_lm_tables(arpa, disk_cache=False)
        self.load_seconds = {"ctctool": time.perf_counter() - started}
        char_lm = CharNgramLM.load(str(folder / f"{name}-chars.npz"))

        def ctctool_decoder(scorers_for, beam_prune=math.inf, prune=DEFAULT_PRUNE_LOG_PROB):
            def make(alpha, beta, unk, beam):
                scorers = scorers_for(alpha, beta, unk)

                def run(lp):
                    best = prefix_beam_search(lp, beam, scorers=scorers, beam_prune=beam_prune, prune_log_prob=prune)
                    return "".join(labels[i - 1] for i in best[0].labels) if best else ""
                return run
            return make

        def word(a, b, unk):
            return compile_scorers(labels, word_lm=bind_word_lm(tables, labels, alpha=a, beta=b, unk_offset=unk))

        self.char_alpha = 0.2  # the character LM's weight beside the word LM: set from its own tuning

        def both(a, b, unk):
            return compile_scorers(labels, lm=char_lm, alpha=self.char_alpha,
                                   word_lm=bind_word_lm(tables, labels, alpha=a, beta=b, unk_offset=unk))

        self.makers = {
            "ctctool, no LM": (ctctool_decoder(lambda a, b, unk: None), None),
            "ctctool + char LM": (ctctool_decoder(
                lambda a, b, unk: compile_scorers(labels, lm=char_lm, alpha=a, beta=b)), "char"),
            "ctctool + word LM": (ctctool_decoder(word), "word"),
            PEER_PRUNED: (ctctool_decoder(word, PEER_BEAM_PRUNE, PEER_TOKEN_MIN_LOGP), "word"),
            "ctctool + char LM + word LM": (ctctool_decoder(both), "word"),
        }
        try:
            import kenlm  # noqa: F401
            from pyctcdecode import build_ctcdecoder
        except ImportError:
            return
        started = time.perf_counter()
        plain = build_ctcdecoder([""] + labels)
        with_lm = build_ctcdecoder([""] + labels, kenlm_model_path=arpa)
        self.load_seconds["pyctcdecode"] = time.perf_counter() - started

        def pyctc_make(decoder, tuned):
            def make(alpha, beta, unk, beam):
                if tuned:
                    decoder.reset_params(alpha=alpha, beta=beta, unk_score_offset=unk)
                return lambda lp: decoder.decode(lp, beam_width=beam)
            return make

        self.makers["pyctcdecode, no LM"] = (pyctc_make(plain, False), None)
        self.makers[PEER] = (pyctc_make(with_lm, True), "word")


def paired_difference(ours: list[str], peers: list[str], references: list[str], resamples: int = 2000,
                      seed: int = 0) -> dict:
    """WER of ``ours`` minus WER of ``peers`` (points) with a 95% paired bootstrap interval over
    lines, and how many lines each gets with fewer word errors than the other."""
    mine = [edits(h.split(), r.split()) for h, r in zip(ours, references, strict=True)]
    theirs = [edits(h.split(), r.split()) for h, r in zip(peers, references, strict=True)]
    words = [len(r.split()) for r in references]
    rng = random.Random(seed)
    count = len(references)
    spread = []
    for _ in range(resamples):
        picks = [rng.randrange(count) for _ in range(count)]
        total = max(1, sum(words[k] for k in picks))
        spread.append(100 * sum(mine[k] - theirs[k] for k in picks) / total)
    spread.sort()
    return {"wer_diff": 100 * (sum(mine) - sum(theirs)) / max(1, sum(words)),
            "low": spread[int(0.025 * resamples)], "high": spread[int(0.975 * resamples) - 1],
            "ours_better": sum(m < t for m, t in zip(mine, theirs)),
            "peer_better": sum(m > t for m, t in zip(mine, theirs))}


def split_by_text(inputs: list, texts: list[str]) -> tuple[list, list]:
    """(validation, test) pairs of (log_probs, text): each distinct text goes wholly to one half,
    chosen by a hash of it, so no test transcript was seen while tuning."""
    halves: tuple[list, list] = ([], [])
    for log_probs, text in zip(inputs, texts, strict=True):
        halves[zlib.crc32(text.encode("utf-8")) % 2].append((log_probs, text))
    return halves


def decode_stage(folder: Path, repeats: int) -> list[dict]:
    import numpy as np

    rows = []
    for name in ("ocr", "speech"):
        meta = json.loads((folder / f"{name}-meta.json").read_text(encoding="utf-8"))
        with np.load(folder / f"{name}-posteriors.npz") as data:
            inputs = [np.ascontiguousarray(data[f"lp{k}"]) for k in range(len(meta["texts"]))]
        texts = meta["texts"]
        val, test = split_by_text(inputs, texts)
        decoders = Decoders(folder, name, meta["labels"])
        tuned_word = None
        outputs = {}  # (decoder, beam) -> test hypotheses, for the paired comparison
        for decoder, (make, kind) in decoders.makers.items():
            if kind is None:
                grid = [(0.0, 0.0, 0.0)]
            elif kind == "char":
                grid = [(a, b, 0.0) for a in CHAR_ALPHAS for b in CHAR_BETAS]
            else:
                grid = [(a, b, u) for a in ALPHAS for b in BETAS for u in UNK_OFFSETS]
            if decoder == PEER_PRUNED:
                grid = [tuned_word]  # the same weights as without beam pruning

            def val_error(params, make=make, val=val):
                run = make(*params, 32)
                return error_rates([run(lp) for lp, _ in val], [t for _, t in val])

            tuned = min(grid, key=val_error)
            if decoder == "ctctool + word LM":
                tuned_word = tuned
            if decoder == "ctctool + char LM":
                decoders.char_alpha = tuned[0]
            for beam in (32, 128):
                run = make(*tuned, beam)
                seconds, hypotheses = [], []
                for _ in range(repeats):
                    started = time.perf_counter()
                    hypotheses = [run(lp) for lp, _ in test]
                    seconds.append(time.perf_counter() - started)
                wer, cer = error_rates(hypotheses, [t for _, t in test])
                outputs[decoder, beam] = hypotheses
                rows.append({"set": name, "decoder": decoder, "beam": beam, "alpha": tuned[0], "beta": tuned[1],
                             "unk_offset": tuned[2],
                             "wer": wer, "cer": cer, "seconds": statistics.median(seconds),
                             "ms_per_item": 1000 * statistics.median(seconds) / len(test), "items": len(test)})
                print(json.dumps(rows[-1]), flush=True)
        references = [t for _, t in test]
        for row in rows:  # every ctctool row with a word LM against pyctcdecode's at its beam
            peer = outputs.get((PEER, row.get("beam")))
            if row.get("set") == name and row.get("decoder") not in (None, PEER) and peer is not None \
                    and decoders.makers[row["decoder"]][1] == "word":
                row["vs_pyctcdecode"] = paired_difference(outputs[row["decoder"], row["beam"]], peer, references)
        rows.append({"set": name, "load_seconds": decoders.load_seconds})
    return rows


def write_table(rows: list[dict], out: Path) -> None:
    lines = ["# Word LM: ctctool vs pyctcdecode 0.5.0 + kenlm", "",
             "Each set split in two by transcript; alpha, beta (and the unk offset of word LMs) tuned per "
             "decoder on the validation half at beam 32, the table is the test half; pyctcdecode runs with its defaults otherwise (token_min_logp -5, "
             "beam_prune_logp -10), ctctool with its own (per-frame cut ln 1e-3, no beam pruning) unless the "
             "row says. "
             "Time: single thread, median of 3 passes over the test half. Ratio: pyctcdecode + kenlm's "
             "time over this row's. Paired: this row's WER minus pyctcdecode + kenlm's at the same beam "
             "(points), a 95% bootstrap interval over test lines, and lines with fewer word errors "
             "(this row / pyctcdecode).", ""]
    for name in ("ocr", "speech"):
        decoded = [r for r in rows if r.get("set") == name and "decoder" in r]
        if not decoded:
            continue
        items = decoded[0]["items"]
        lines += [f"## {name} ({items} test items)", "",
                  "| decoder | beam | alpha | beta | unk offset | WER | CER | ms / item | "
                  "pyctcdecode+LM time / this | paired WER difference | lines better |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in decoded:
            peer = next((r for r in decoded if r["decoder"] == PEER
                         and r["beam"] == row["beam"]), None)
            ratio = f"{peer['seconds'] / row['seconds']:.1f}x" if peer else "-"
            paired = row.get("vs_pyctcdecode")
            difference = (f"{paired['wer_diff']:+.2f} ({paired['low']:+.2f} to {paired['high']:+.2f})"
                          if paired else "-")
            better = f"{paired['ours_better']} / {paired['peer_better']}" if paired else "-"
            lines.append(f"| {row['decoder']} | {row['beam']} | {row['alpha']:g} | {row['beta']:g} | "
                         f"{row['unk_offset']:g} | "
                         f"{100 * row['wer']:.2f}% | {100 * row['cer']:.2f}% | {row['ms_per_item']:.2f} | {ratio} | "
                         f"{difference} | {better} |")
        load = next((r["load_seconds"] for r in rows if r.get("set") == name and "load_seconds" in r), {})
        lines += ["", "LM load (s): " + ", ".join(f"{k} {v:.2f}" for k, v in load.items()), ""]
    (out / "word_lm.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "word_lm.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--stage", choices=["all", "posteriors", "decode"], default="all")
    parser.add_argument("--peer-python", default=str(REPO / ".venv-bench/bin/python"),
                        help="The environment with pyctcdecode and kenlm, for the decode stage.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.out) / "word_lm"
    if args.stage in ("all", "posteriors"):
        posteriors(folder)
    if args.stage == "all":
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        return subprocess.run([args.peer_python, __file__, "--out", args.out, "--stage", "decode",
                               "--repeats", str(args.repeats)], env=env).returncode
    if args.stage == "decode":
        write_table(decode_stage(folder, args.repeats), folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
