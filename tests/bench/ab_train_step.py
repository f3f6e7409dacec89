"""A/B of the OCR training step between two source trees, alternated in one run (medians).

    git worktree add /tmp/before REV
    python tests/bench/ab_train_step.py /tmp/before . [REPEATS]

Both trees train 70 steps of the default network on the bundled lines (pure-Python decoder,
2 threads); the time per step is taken over steps 10-70.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "ocr" / "train.jsonl"
trees = {"before": os.path.abspath(sys.argv[1]), "after": os.path.abspath(sys.argv[2])}
code = r'''
import sys, time, json
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(2)
from ctctool.features import default_extractor
from ctctool.manifest import read_manifest
from ctctool.train import TrainConfig, train
items = read_manifest(sys.argv[2])[:960]
class M:
    def start(self, total, done): pass
    def step(self, step, loss, rate):
        if step == 10: M.t0 = time.perf_counter()
        if step == 70: M.t1 = time.perf_counter()
    def evaluated(self, *a): pass
    def message(self, *a): pass
    def close(self): pass
train(items, output=sys.argv[3] + "/m.pt", run_dir=sys.argv[3] + "/run", extractor=default_extractor("image"),
      config=TrainConfig(max_steps=70, batch_size=16, seed=0, eval_every=1000), monitor=M())
print(json.dumps((M.t1 - M.t0) / 60))
'''
times = {k: [] for k in trees}
scratch = tempfile.mkdtemp(prefix="ctctool-ab-")
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3):
    for name, tree in trees.items():
        env = {**os.environ, "CTCTOOL_PUREPYTHON": "1", "PYTHONPATH": tree}
        out = subprocess.run([sys.executable, "-c", code, tree, str(DATA), scratch], capture_output=True, text=True,
                             env=env, cwd=scratch)
        if out.returncode:
            sys.exit(out.stderr[-1500:])
        times[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(name, round(times[name][-1], 4), flush=True)
med = {k: statistics.median(v) for k, v in times.items()}
print(json.dumps({k: round(v, 4) for k, v in med.items()}), "after/before", round(med["after"] / med["before"], 3))
