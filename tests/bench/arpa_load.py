"""`make bench`, part 7: how long a large ARPA word LM takes to load into the search's tables,
the first time (parse + compile) and from the cache written next to it, with peak memory.

The file is synthetic (random Zipf-distributed words, well-formed ARPA: every listed n-gram's
context and every context's suffix is listed, contexts carry back-off weights), sized by
--words / --bigrams / --trigrams; the defaults give about 85 MB. Each load runs in a fresh
process so the in-memory cache cannot help and the peak RSS is that load's alone.

    python tests/bench/arpa_load.py --out bench-out [--words 60000 --bigrams 1500000 --trigrams 1500000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LOAD = """
import json, resource, sys, time
t0 = time.perf_counter()
from ctctool.decoding.word_tables import load_word_lm_tables
t1 = time.perf_counter()
tables = load_word_lm_tables(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "import_seconds": t1 - t0, "states": tables.num_states,
                  "entries": int((tables.table.keys != -1).sum()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_arpa(path: Path, *, words: int, bigrams: int, trigrams: int, seed: int = 0) -> tuple[int, int]:
    """A well-formed trigram ARPA file with random (not normalized) probabilities; returns the
    numbers of bigrams and trigrams it lists."""
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(words)]

    def zipf_ids(count: int) -> np.ndarray:
        return (rng.zipf(1.3, size=count) - 1) % words

    # Zipf-distributed first words, uniform second words: enough distinct pairs to reach --bigrams
    bigram_pairs = np.unique(np.stack([zipf_ids(bigrams * 2), rng.integers(0, words, bigrams * 2)], axis=1), axis=0)
    bigram_pairs = bigram_pairs[rng.permutation(len(bigram_pairs))[:bigrams]]
    # Trigrams extend listed bigrams (their context) and end in a listed bigram (their suffix),
    # as lmplz writes them: pick a bigram (a, b), then c among the words that follow b.
    order = np.argsort(bigram_pairs[:, 0], kind="stable")
    by_first = bigram_pairs[order]
    starts = np.searchsorted(by_first[:, 0], np.arange(words))
    ends = np.searchsorted(by_first[:, 0], np.arange(words), side="right")
    picks = bigram_pairs[rng.integers(0, len(bigram_pairs), size=trigrams * 3)]
    b = picks[:, 1]
    has_next = ends[b] > starts[b]
    picks, b = picks[has_next], b[has_next]
    offset = (rng.random(len(b)) * (ends[b] - starts[b])).astype(np.int64)
    c = by_first[starts[b] + offset, 1]
    triples = np.unique(np.stack([picks[:, 0], picks[:, 1], c], axis=1), axis=0)
    triples = triples[rng.permutation(len(triples))[:trigrams]]
    bigram_contexts = {tuple(x) for x in np.unique(triples[:, :2], axis=0).tolist()}
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"\\data\\\nngram 1={words + 3}\nngram 2={len(bigram_pairs)}\nngram 3={len(triples)}\n\n")
        handle.write("\\1-grams:\n-1.5\t</s>\n-99\t<s>\t-0.5\n-4.5\t<unk>\n")
        unigram_logp = -(1.0 + 4.0 * rng.random(words))
        for word, logp in zip(vocabulary, unigram_logp.tolist()):
            handle.write(f"{logp:.6f}\t{word}\t{-0.3 * rng.random():.6f}\n")
        handle.write("\n\\2-grams:\n")
        logps = -(0.2 + 3.0 * rng.random(len(bigram_pairs)))
        backoffs = -0.4 * rng.random(len(bigram_pairs))
        for (x, y), logp, backoff in zip(bigram_pairs.tolist(), logps.tolist(), backoffs.tolist()):
            line = f"{logp:.6f}\t{vocabulary[x]} {vocabulary[y]}"
            handle.write(line + (f"\t{backoff:.6f}\n" if (x, y) in bigram_contexts else "\n"))
        handle.write("\n\\3-grams:\n")
        logps = -(0.1 + 2.0 * rng.random(len(triples)))
        for (x, y, z), logp in zip(triples.tolist(), logps.tolist()):
            handle.write(f"{logp:.6f}\t{vocabulary[x]} {vocabulary[y]} {vocabulary[z]}\n")
        handle.write("\n\\end\\\n")
    return len(bigram_pairs), len(triples)


def timed_load(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--words", type=int, default=60_000)
    parser.add_argument("--bigrams", type=int, default=1_500_000)
    parser.add_argument("--trigrams", type=int, default=1_500_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    path = folder / "words.arpa"
    listed = make_arpa(path, words=args.words, bigrams=args.bigrams, trigrams=args.trigrams)
    size_mb = path.stat().st_size / 1e6
    cache = Path(str(path) + ".ctctool-cache.npz")
    first, cached = [], []
    for _ in range(args.repeats):
        cache.unlink(missing_ok=True)
        first.append(timed_load(path))
        cached.append(timed_load(path))
        print(first[-1], cached[-1], file=sys.stderr)

    def median(runs: list[dict], key: str) -> float:
        return float(np.median([run[key] for run in runs]))

    lines = [f"# word LM load time: synthetic trigram ARPA, {size_mb:.0f} MB, {args.words:,} words, "
             f"{listed[0]:,} bigrams, {listed[1]:,} trigrams, {first[0]['entries']:,} table entries, {first[0]['states']:,} context states; "
             f"median of {args.repeats}, each in a fresh process", "",
             "| load | seconds | peak RSS MB |", "|---|---|---|",
             f"| first (parse ARPA + compile tables + write cache) | {median(first, 'seconds'):.1f} | "
             f"{median(first, 'peak_mb'):.0f} |",
             f"| again (from {cache.name.split('.', 1)[1]}) | {median(cached, 'seconds'):.2f} | "
             f"{median(cached, 'peak_mb'):.0f} |"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "arpa_load.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    os.remove(path)
    cache.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
