"""`make bench`: ctctool's beam search against pyctcdecode, fast-ctc-decode and flashlight-text
on the same model-like inputs, in one process; writes a markdown table and JSON.

Peers run with the settings their users get by default (pyctcdecode's token_min_logp=-5 and
beam_prune_logp=-10; flashlight-text as torchaudio's ctc_decoder sets it up; fast-ctc-decode
without and with its beam-cut threshold). Agreement is top-1 equality with a reference: the
compiled search with no per-frame pruning and beam 128 (for V=5000: the 100 most likely symbols
per frame, since the rest hold under 1e-5 of the mass).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from logits import make_set  # noqa: E402

from ctctool.decoding import (  # noqa: E402
    BACKEND,
    CharNgramLM,
    compile_scorers,
    prefix_beam_search,
    prefix_beam_search_batch,
)

logging.disable(logging.WARNING)  # pyctcdecode warns about missing spaces / kenlm
CJK = 0x4E00


def alphabet(classes: int) -> list[str]:
    return [chr(CJK + i) for i in range(classes - 1)]


def text_of(labels, chars) -> str:
    return "".join(chars[i - 1] for i in labels)


class Peers:
    def __init__(self, classes: int):
        self.chars = alphabet(classes)
        self.available: dict[str, object] = {}
        try:
            from pyctcdecode import build_ctcdecoder

            self.available["pyctcdecode"] = build_ctcdecoder([""] + self.chars)
        except ImportError:
            pass
        try:
            import fast_ctc_decode

            self.available["fast-ctc-decode"] = fast_ctc_decode
        except ImportError:
            pass
        try:
            from flashlight.lib.text.decoder import (
                CriterionType,
                LexiconFreeDecoder,
                LexiconFreeDecoderOptions,
                ZeroLM,
            )

            self.flashlight = (CriterionType, LexiconFreeDecoder, LexiconFreeDecoderOptions, ZeroLM)
            self.available["flashlight-text"] = True
        except ImportError:
            pass

    def runners(self, beam: int, classes: int):
        chars = self.chars
        out = {}
        if "pyctcdecode" in self.available:
            pyctc = self.available["pyctcdecode"]
            out["pyctcdecode"] = lambda lp: pyctc.decode(lp, beam_width=beam)
        if "fast-ctc-decode" in self.available:
            fcd = self.available["fast-ctc-decode"]
            blank_alphabet = ["\u3000"] + chars
            cut = min(1e-3, 0.5 / classes)
            if classes <= 1000:  # unpruned at V=5000 it grew past 20 GB of memory here and was killed
                out["fast-ctc-decode"] = lambda lp: fcd.beam_search(np.exp(lp), blank_alphabet, beam_size=beam)[0]
            out[f"fast-ctc-decode cut={cut:g}"] = lambda lp: fcd.beam_search(
                np.exp(lp), blank_alphabet, beam_size=beam, beam_cut_threshold=cut)[0]
        if "flashlight-text" in self.available:
            CriterionType, LexiconFreeDecoder, LexiconFreeDecoderOptions, ZeroLM = self.flashlight
            options = LexiconFreeDecoderOptions(beam_size=beam, beam_size_token=classes, beam_threshold=50.0,
                                                lm_weight=0.0, sil_score=0.0, log_add=False,
                                                criterion_type=CriterionType.CTC)
            fl_decoder = LexiconFreeDecoder(options, ZeroLM(), classes - 1, 0, [])

            def flashlight(lp):
                lp = np.ascontiguousarray(lp)
                # the path starts and ends with the silence token, as torchaudio strips it
                tokens = list(fl_decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0].tokens)[1:-1]
                collapsed, previous = [], -1
                for token in tokens:
                    if token != previous and token != 0:
                        collapsed.append(token)
                    previous = token
                return text_of(collapsed, chars)

            out["flashlight-text"] = flashlight
        return out


def timed(fn, inputs, budget_s: float = float("inf")):
    """Outputs and median ms per utterance; stops early (fewer outputs) once ``budget_s`` is spent."""
    outputs, times = [], []
    for lp in inputs:
        start = time.perf_counter()
        outputs.append(fn(lp))
        times.append(time.perf_counter() - start)
        if sum(times) > budget_s:
            break
    return outputs, 1000 * statistics.median(times)


def reference(inputs, classes):
    top_k = 100 if classes > 1000 else 0
    return [prefix_beam_search(lp, 128, prune_log_prob=float("-inf"), top_k=top_k)[0].labels for lp in inputs]


# A peer slower than this per utterance at some (T, beam) is not run again for that V and
# variant at a wider beam or on longer inputs at all: unpruned fast-ctc-decode and its
# beam-cut at V=5000 on hard input grew past 20 GB and were killed by the kernel here.
SLOW_MS = 1500.0


def grid(args, rows, skipped):
    too_slow: dict[tuple[str, int, bool], tuple[int, int]] = {}  # (decoder, V, hard) -> (T, beam) where it was
    frames_list = [100, 500, 2000] if not args.quick else [100, 500]
    classes_list = [30, 100, 5000] if not args.quick else [30, 100]
    beams = [8, 32, 128] if not args.quick else [8, 32]
    counts = {100: 30, 500: 20, 2000: 5}
    for frames in frames_list:
        for classes in classes_list:
            peers = Peers(classes)
            for hard in (False, True):
                count = 100 if (frames, classes) == (500, 100) and not args.quick else counts[frames]
                inputs = make_set(1000 * frames + classes + (7 if hard else 0), count, frames, classes, hard)
                ref = [text_of(r, peers.chars) for r in reference(inputs, classes)]
                for beam in beams:
                    chars = peers.chars
                    decoders = {"ctctool": lambda lp, b=beam, a=chars: text_of(prefix_beam_search(lp, b)[0].labels, a)}
                    if (frames, classes) == (500, 100):
                        decoders["ctctool unpruned"] = lambda lp, b=beam, a=chars: text_of(
                            prefix_beam_search(lp, b, prune_log_prob=float("-inf"))[0].labels, a)
                    if not args.no_peers:
                        decoders.update(peers.runners(beam, classes))
                    results = {}
                    for name in list(decoders):
                        seen = too_slow.get((name, classes, hard))
                        if seen and (frames > seen[0] or beam >= seen[1]):
                            del decoders[name]
                            skipped.append({"T": frames, "V": classes, "beam": beam, "decoder": name,
                                            "variant": "hard" if hard else "peaky",
                                            "reason": f"over {SLOW_MS:.0f} ms per utterance at T={seen[0]} beam={seen[1]}"})
                    for name, fn in decoders.items():
                        # peers get a time budget per cell: flashlight-text needs seconds per utterance at V=5000
                        outputs, ms = timed(fn, inputs, float("inf") if name == "ctctool" else args.budget)
                        agree = sum(o == r for o, r in zip(outputs, ref)) / len(outputs)
                        results[name] = (ms, agree, len(outputs))
                        if ms > SLOW_MS and name != "ctctool":
                            too_slow.setdefault((name, classes, hard), (frames, beam))
                    base = results["ctctool"][0]
                    for name, (ms, agree, done) in results.items():
                        rows.append({"T": frames, "V": classes, "beam": beam, "variant": "hard" if hard else "peaky",
                                     "utterances": done, "decoder": name, "median_ms": round(ms, 3),
                                     "ratio_to_ctctool": round(ms / base, 2) if base > 0 else None,
                                     "top1_agreement": round(agree, 4)})
                    write_table(rows, {"partial": "the run is still going"}, Path(args.out), skipped)
                    print(f"T={frames} V={classes} beam={beam} {'hard' if hard else 'peaky'}: " + ", ".join(
                        f"{n} {ms:.2f} ms ({100 * a:.0f}%)" for n, (ms, a, _) in results.items()), file=sys.stderr, flush=True)


def scaling(rows_out):
    inputs = {v: make_set(77 + v, 20, 500, v, False) for v in (100, 5000)}
    ms = {v: timed(lambda lp: prefix_beam_search(lp, 32), inputs[v])[1] for v in inputs}
    rows_out["v5000_over_v100"] = round(ms[5000] / ms[100], 2)
    rows_out["v100_ms"], rows_out["v5000_ms"] = round(ms[100], 3), round(ms[5000], 3)


def threads(rows_out, repeats: int = 5):
    inputs = make_set(4242, 64, 500, 100, False)
    times = {1: [], 2: []}
    for _ in range(repeats):
        for n in (1, 2):
            start = time.perf_counter()
            prefix_beam_search_batch(inputs, 32, num_threads=n)
            times[n].append(time.perf_counter() - start)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    rows_out.update(batch64_1thread_ms=round(1000 * one, 1), batch64_2threads_ms=round(1000 * two, 1),
                    batch64_speedup=round(one / two, 2))


def language_model(rows_out):
    classes = 100
    chars = alphabet(classes)
    rng = np.random.default_rng(9)
    # LM corpus: text with the same kind of symbols; the LM's cost, not its benefit, is measured here
    corpus = ["".join(chars[i] for i in rng.integers(0, classes - 1, size=rng.integers(20, 80))) for _ in range(3000)]
    lm = CharNgramLM.build(corpus, order=6)
    scorers = compile_scorers(chars, lm=lm, alpha=0.5, beta=0.5)
    inputs = make_set(555, 30, 500, classes, False)
    off = timed(lambda lp: prefix_beam_search(lp, 32), inputs)[1]
    on = timed(lambda lp: prefix_beam_search(lp, 32, scorers=scorers), inputs)[1]
    rows_out.update(lm_off_ms=round(off, 3), lm_on_ms=round(on, 3), lm_slowdown=round(on / off, 2))


def write_table(rows, extra, out: Path, skipped, final: bool = False):
    lines = [f"# ctctool decoder benchmark ({time.strftime('%Y-%m-%d %H:%M')}, backend {BACKEND}, "
             f"{os.cpu_count()} CPUs)", "",
             "Median milliseconds per utterance, single thread; ratio = decoder / ctctool (higher: ctctool faster); "
             "agreement = top-1 equal to the reference.", "",
             "| T | V | beam | variant | n | decoder | median ms | ratio | top-1 agreement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['T']} | {r['V']} | {r['beam']} | {r['variant']} | {r['utterances']} | {r['decoder']} | "
                     f"{r['median_ms']:.2f} | {r['ratio_to_ctctool']} | {100 * r['top1_agreement']:.1f}% |")
    lines += ["", "| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in extra.items()]
    lines += ["", "v5000_over_v100: ctctool at T=500, beam 32, V=5000 over V=100. batch64: 64 utterances "
              "(T=500, V=100, beam 32) with prefix_beam_search_batch on 1 and 2 threads, median of 5. "
              "lm: order-6 character LM on vs off at T=500, V=100, beam 32."]
    if skipped:
        lines += ["", "Peer runs left out (too slow to finish in a bench run):", ""]
        lines += [f"- T={r['T']} V={r['V']} beam={r['beam']} {r['variant']}: {r['decoder']}, {r['reason']}"
                  for r in skipped]
    (out / "decoders.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "decoders.json").write_text(json.dumps({"rows": rows, "extra": extra, "skipped": skipped}, indent=1),
                                       encoding="utf-8")
    if final:
        print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke run")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per peer and grid cell")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    extra: dict = {"backend": BACKEND}
    scaling(extra)
    threads(extra)
    language_model(extra)
    print(extra, file=sys.stderr)
    skipped: list[dict] = []
    grid(args, rows, skipped)
    extra["skipped peer runs"] = len(skipped)
    write_table(rows, extra, out, skipped, final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
