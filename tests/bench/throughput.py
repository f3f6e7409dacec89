"""`make bench`, part 4: lines per second of `ctctool decode` against tesseract 5, start-up
included, same line images, same cores; and the peak memory of decoding paths from stdin.

Inputs: 2,000 bundled line images (data/ocr test, val, unseen-fonts and the first 1,400
training lines), as paths on stdin. Each command is a fresh process timed from launch to
exit, alternated per round (medians of --repeats):
- tesseract 5 in list-file mode (`tesseract LIST stdout --psm 7 -l eng`, OMP_THREAD_LIMIT=N);
- `ctctool decode latin-print - --threads N` as installed (its shipped ONNX export, beam 16);
- the same with `--runtime torch` (PyTorch, greedy and beam 16);
- `ctctool decode latin-print.onnx - --threads N` (onnxruntime, greedy), exported once here.
Peak resident memory (ru_maxrss of that process) comes with every row. --memory-paths M also
decodes M paths (the 2,000 repeated) from stdin with the fastest variant and reports its peak.

    python tests/bench/throughput.py --out bench-out [--threads 1] [--repeats 3] [--memory-paths 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OCR = REPO / "data" / "ocr"
CTCTOOL = str(Path(sys.executable).parent / "ctctool")


def line_paths() -> list[str]:
    paths = []
    for name, count in (("test", 200), ("val", 200), ("test-unseen-fonts", 200), ("train", 1400)):
        for line in (OCR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:count]:
            paths.append(str(OCR / json.loads(line)["path"]))
    return paths


def timed(command: list[str], stdin_text: str | None, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one fresh process."""
    with tempfile.TemporaryFile("w+") as feed, tempfile.TemporaryFile("w+") as out:
        if stdin_text is not None:
            feed.write(stdin_text)
            feed.seek(0)
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=feed, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, out.read()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-paths", type=int, default=0)
    args = parser.parse_args()
    paths = line_paths()
    listing = "\n".join(paths) + "\n"
    folder = Path(tempfile.mkdtemp())
    (folder / "list.txt").write_text(listing)
    onnx_path = folder / "latin-print.onnx"
    subprocess.run([CTCTOOL, "export", "latin-print", "-o", str(onnx_path)], check=True, capture_output=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": str(args.threads), "CTCTOOL_THREADS": str(args.threads)}
    variants = {
        "ctctool decode latin-print (default: its shipped ONNX export, beam 16)":
            ([CTCTOOL, "decode", "latin-print", "-"], listing),
        "ctctool decode (PyTorch, greedy)": ([CTCTOOL, "decode", "latin-print", "-", "--beam", "1", "--runtime",
                                              "torch"], listing),
        "ctctool decode (PyTorch, beam 16)": ([CTCTOOL, "decode", "latin-print", "-", "--runtime", "torch"], listing),
        "ctctool decode (onnxruntime, greedy)": ([CTCTOOL, "decode", str(onnx_path), "-", "--beam", "1"], listing),
    }
    if shutil.which("tesseract"):
        variants["tesseract 5 (list file, --psm 7)"] = (
            ["tesseract", str(folder / "list.txt"), "stdout", "--psm", "7", "-l", "eng"], None)
    else:
        print("tesseract not found (apt-get install tesseract-ocr tesseract-ocr-eng): its row is left out",
              file=sys.stderr)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_ in range(args.repeats):
        for name in (list(variants) if round_ % 2 == 0 else list(reversed(variants))):
            command, stdin_text = variants[name]
            seconds, peak, _ = timed(command, stdin_text, env)
            runs[name].append((seconds, peak))
            print(f"{name}: {seconds:.1f} s, {peak:.0f} MB", file=sys.stderr)
    tesseract = next((statistics.median(s for s, _ in v) for k, v in runs.items() if k.startswith("tesseract")), None)
    lines = [f"# decode throughput, {len(paths)} line images, paths on stdin, {args.threads} thread(s), "
             f"start-up included (medians of {args.repeats})", "",
             "| recognizer | seconds | lines/s | vs tesseract | peak memory (MB) |", "|---|---|---|---|---|"]
    for name, values in runs.items():
        seconds = statistics.median(s for s, _ in values)
        ratio = f"{tesseract / seconds:.2f}x" if tesseract else "-"
        lines.append(f"| {name} | {seconds:.1f} | {len(paths) / seconds:.0f} | {ratio} | "
                     f"{max(p for _, p in values):.0f} |")
    if args.memory_paths:
        many = "\n".join(paths[i % len(paths)] for i in range(args.memory_paths)) + "\n"
        seconds, peak, out = timed([CTCTOOL, "decode", str(onnx_path), "-", "--beam", "1"], many, env)
        lines += ["", f"{args.memory_paths:,} paths from stdin (onnxruntime, greedy): {seconds:.0f} s, "
                      f"peak memory {peak:.0f} MB, {out.count(chr(10)):,} results"]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "throughput.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "throughput.json").write_text(json.dumps(runs, indent=2), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
