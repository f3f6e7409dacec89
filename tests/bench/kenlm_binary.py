"""`make bench`, part 8: what a KenLM binary word LM costs against the same model as ARPA.

A KenLM binary is scored through the ``kenlm`` module by the Python search, at word ends only;
an ARPA file becomes the compiled search's tables. Both are the same trigram model here (built
with ``ctctool lm build --word`` from ``data/latin-print/train.txt``; ``kenlm.Model`` reads the
ARPA file through the API a binary gets, since ``build_binary`` is not installed), the same
weights, on the bundled latin-print model's posteriors for the first --lines OCR test lines.

    python tests/bench/kenlm_binary.py --out bench-out [--lines 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import editdistance

from ctctool.checkpoint import load_model
from ctctool.inference import run_network
from ctctool.manifest import read_manifest
from ctctool.recognition import best_hypotheses, build_decode_options

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.0)
    args = parser.parse_args()
    try:
        import kenlm
    except ImportError:
        print("kenlm is not installed (pip install 'ctctool[kenlm]'): skipped", file=sys.stderr)
        return 0
    from ctctool.decoding.kenlm_binary import KenLMBinaryScorer

    arpa = Path(tempfile.mkdtemp()) / "words.arpa"
    subprocess.run([str(Path(sys.executable).parent / "ctctool"), "lm", "build",
                    str(REPO / "data/latin-print/train.txt"), "-o", str(arpa), "--word", "--order", "3"],
                   check=True, capture_output=True)
    model = load_model("latin-print")
    items = list(read_manifest(str(REPO / "data/ocr/test.jsonl")))[:args.lines]
    outputs = list(run_network(model, items))
    compiled = build_decode_options(model.codec, lm=str(arpa), alpha=args.alpha, beta=args.beta)
    binary = replace(compiled, scorers=KenLMBinaryScorer(kenlm.Model(str(arpa)), model.codec.labels,
                                                         alpha=args.alpha, beta=args.beta))
    rows = []
    for name, options in (("word LM as ARPA (compiled search)", compiled),
                          ("word LM through kenlm (Python search, as a KenLM binary)", binary),
                          ("no LM", build_decode_options(model.codec))):
        errors = words = 0
        start = time.perf_counter()
        for output in outputs:
            text = model.codec.decode(best_hypotheses(model, output.log_probs, options)[0].labels)
            errors += editdistance.eval(text.split(), output.item.text.split())
            words += len(output.item.text.split())
        rows.append((name, 1000 * (time.perf_counter() - start) / len(outputs), 100 * errors / words))
    lines = [f"# KenLM binary path vs ARPA: {len(outputs)} OCR test lines, beam {compiled.beam}, alpha "
             f"{args.alpha}, beta {args.beta} (untuned), one process", "",
             "| decoder | ms / line | WER |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.2f} | {wer:.2f}% |" for name, ms, wer in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kenlm_binary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
