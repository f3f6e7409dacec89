"""`make bench`, part 2: torch threads on a quiet machine and beside a busy process.

Each measurement is a fresh process (the OpenMP wait policy is read once, at torch's import)
that trains 40 steps on 320 bundled OCR lines and then decodes 200 test lines (beam 16).
Variants: `--threads 1` and `--threads 2` with the OpenMP defaults, ctctool's default (the
thread count from the cores other processes left free during start-up, ctctool.threads), and
`2 threads, passive` (OMP_WAIT_POLICY=PASSIVE, which ctctool set by default until this bench
showed it 2.6x slower on a quiet machine).
Conditions: quiet, and beside one busy-loop process (what `yes > /dev/null` does to a core);
`as-is` starts nothing and records the load average it found (for a machine that is busy anyway).
Variants are alternated within each round; the table gives medians and each variant's time
relative to the better of 1 and 2 threads under the same condition.

    python tests/bench/threads.py --out bench-out [--repeats 3] [--conditions quiet,busy]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OCR = REPO / "data" / "ocr"
VARIANTS = {  # name -> (threads or None for ctctool's default, OMP_WAIT_POLICY=PASSIVE)
    "1 thread": (1, False),
    "2 threads": (2, False),
    "2 threads, passive": (2, True),
    "ctctool default": (None, False),
}


def job(threads: int | None, policy: bool, folder: str) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    sys.path.insert(0, str(REPO))
    if policy:  # libgomp reads it once, at torch's import
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if threads is None:  # as the CLI does: the load sample spans the imports, the count is chosen after them
        from ctctool.threads import start_load_sample

        start_load_sample()
    import torch

    from ctctool.checkpoint import load_model
    from ctctool.evaluation import evaluate_items
    from ctctool.features import default_extractor
    from ctctool.manifest import read_manifest
    from ctctool.recognition import DecodeOptions
    from ctctool.threads import default_threads
    from ctctool.train import TrainConfig, train

    threads = threads or default_threads()
    torch.set_num_threads(threads)
    items = read_manifest(OCR / "train.jsonl")[:320]
    test = read_manifest(OCR / "test.jsonl")
    start = time.perf_counter()
    train(items, output=os.path.join(folder, "m.pt"), run_dir=os.path.join(folder, "run"),
          extractor=default_extractor("image"), config=TrainConfig(max_steps=40, seed=1, eval_every=1000))
    trained = time.perf_counter() - start
    model = load_model(os.path.join(folder, "m.pt"))
    start = time.perf_counter()
    evaluate_items(model, test, options=DecodeOptions(beam=16))
    return {"train": trained, "decode": time.perf_counter() - start, "threads": threads,
            "policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)")}


def busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(name: str, base: Path, round_: int) -> dict[str, float]:
    threads, policy = VARIANTS[name]
    folder = tempfile.mkdtemp(dir=base)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "CTCTOOL_THREADS"))}
    done = subprocess.run([sys.executable, __file__, "--job", json.dumps([threads, policy, folder])],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conditions", default="quiet,busy", help="quiet, busy and/or as-is, comma-separated")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job(*json.loads(args.job))))
        return 0
    base = Path(tempfile.mkdtemp())
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    loads: list[float] = []  # 1-minute load average as each condition began
    for condition in args.conditions.split(","):
        if condition not in ("quiet", "busy", "as-is"):
            parser.error(f"unknown condition {condition!r}")
        results[condition] = {name: {"train": [], "decode": []} for name in VARIANTS}
        loads.append(os.getloadavg()[0])
        competitor = busy_loop() if condition == "busy" else None
        try:
            time.sleep(1.0 if competitor else 0)
            for round_ in range(args.repeats):
                order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
                for name in order:
                    got = measure(name, base, round_)
                    for part in ("train", "decode"):
                        results[condition][name][part].append(got[part])
                    print(f"{condition} {name}: train {got['train']:.1f} s, decode {got['decode']:.1f} s "
                          f"({got['threads']} threads, {got['policy']})", file=sys.stderr)
        finally:
            if competitor:
                competitor.kill()
                competitor.wait()
    lines = [f"# torch threads, quiet and beside one busy process (medians of {args.repeats}, each a fresh "
             f"process; {os.cpu_count()} cores)", "",
             "| condition | variant | 40 training steps (s) | vs best of 1/2 threads | decode 200 lines, beam 16 (s) "
             "| vs best of 1/2 threads |", "|---|---|---|---|---|---|"]
    for (condition, by_variant), load in zip(results.items(), loads):
        medians = {name: {part: statistics.median(v) for part, v in parts.items()} for name, parts in by_variant.items()}
        best = {part: min(medians["1 thread"][part], medians["2 threads"][part]) for part in ("train", "decode")}
        for name, value in medians.items():
            lines.append(f"| {condition} (load {load:.1f}) | {name} | {value['train']:.1f} | {value['train'] / best['train']:.2f} | "
                         f"{value['decode']:.1f} | {value['decode'] / best['decode']:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "threads.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
