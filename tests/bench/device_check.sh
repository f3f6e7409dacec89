#!/usr/bin/env bash
# One prepared run on a lent CUDA machine (issue 10's GPU rows), in a time budget of about 7 min:
#   1. install ctctool into the machine's own Python (its PyTorch), building the Cython search;
#   2. tests/bench/gpu_hardening.py: exact resume, non-finite batches, hostile decode on CUDA;
#   3. tests/bench/step_split.py --device cuda: where a GPU training step's time goes, by --workers;
#      tests/bench/layout_cost.py --device cuda: channels-last convolutions against the default layout;
#   4. decode throughput over 2,000 bundled lines on all the CPU cores (--workers) and on CUDA;
#   5. the default test suite on a machine where CUDA is visible (pytest-xdist).
# Packages that machine lacks travel as wheels in .whl/ (ignored by git), fetched here with
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
#       soundfile editdistance defusedxml xmlschema elementpath cffi pycparser
# Env: SKIP_HARDENING=1, SKIP_SPLIT=1, SKIP_LAYOUT=1, SPLIT_WORKERS=0,2, LINES=2000,
# DECODE_SPECS='onnx,cpu,0 torch,cuda,4 torch,cpu,4,8' (runtime,device,workers[,threads]),
# CPU_THREADS='2 4 8', CPU_STEPS=20, CPU_WORKERS=2, PYTEST_SECONDS=150, PYTEST_JOBS=14 (the last two need pytest-xdist and pytest-timeout).
#     OUT=/tmp/device-out bash tests/bench/device_check.sh [DEVICE]   # DEVICE cuda (default) or cpu
set -u
DEVICE=${1:-cuda}
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
stamp() { echo "== $(date +%T) $*"; }

stamp setup
if [ -d .whl ] && ! $PY -c "import soundfile, editdistance, defusedxml" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
$PY -c "import ctctool.decoding._beam" 2>/dev/null \
  || $PY -m pip install -q --no-build-isolation --no-deps --no-index -e . 2>&1 | tail -5
BIN=$(dirname "$($PY -c 'import sys; print(sys.executable)')")
CTCTOOL="$BIN/ctctool"
nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY -c "import torch, ctctool.decoding._beam as b; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  || { echo "ctctool did not import: stopping"; exit 2; }

if [ "$DEVICE" = cuda ] && [ -z "${SKIP_HARDENING:-}" ]; then
  stamp gpu_hardening
  timeout 150 $PY tests/bench/gpu_hardening.py --out /tmp/gpu-hardening > "$OUT/hardening.log" 2>&1 \
    || tail -4 "$OUT/hardening.log"
  grep '^{' "$OUT/hardening.log"
fi

stamp step_split
[ -n "${SKIP_SPLIT:-}" ] || timeout 170 $PY tests/bench/step_split.py --out "$OUT" --steps 60 --threads 4 --device "$DEVICE" \
  --workers "${SPLIT_WORKERS:-0,2,4,8}" 2>&1 | tail -14

stamp layout_cost
[ -n "${SKIP_LAYOUT:-}" ] || timeout 120 $PY tests/bench/layout_cost.py --out "$OUT" --device "$DEVICE" --rounds 3 \
  2>&1 | tail -8

# Training threads on this machine's CPU (CPU_THREADS='2 4 8'): does a step gain from more cores?
for threads in ${CPU_THREADS:-}; do
  stamp "step_split cpu, $threads threads"
  timeout 120 $PY tests/bench/step_split.py --out "$OUT/split-cpu-t$threads" --steps "${CPU_STEPS:-20}" --threads "$threads" \
    --device cpu --workers "${CPU_WORKERS:-2}" 2>&1 | grep -E '^[|] (OCR|speech)'
done

stamp decode throughput
LINES=${LINES:-2000}
ls data/ocr/lines/*.png | head -n "$LINES" > /tmp/lines.txt
{
  echo "| command | --workers | --threads | seconds | lines/s | same text as the first row |"
  echo "|---|---|---|---|---|---|"
  for spec in ${DECODE_SPECS:-"onnx,cpu,0" "onnx,cpu,4" "onnx,cpu,12" "torch,cpu,12" "torch,$DEVICE,4" "torch,$DEVICE,12"}; do
    IFS=, read -r -a spec <<< "$spec"
    set -- "${spec[@]}"
    threads=${4:-}
    result="/tmp/decode-$1-$2-$3${threads:+-t$threads}.tsv"
    start=$(date +%s.%N)
    timeout 45 "$CTCTOOL" decode latin-print - --runtime "$1" --device "$2" --workers "$3" ${threads:+--threads "$threads"} \
      --format tsv < /tmp/lines.txt > "$result" 2>/tmp/decode.err || tail -2 /tmp/decode.err
    end=$(date +%s.%N)
    [ -z "${FIRST:-}" ] && FIRST="$result"
    same=$(cmp -s "$FIRST" "$result" && echo yes || echo "no ($(diff "$FIRST" "$result" | grep -c '^>') lines differ)")
    awk -v a="$start" -v b="$end" -v r="$1 $2" -v w="$3" -v t="${threads:-default}" -v s="$same" \
      -v n="$LINES" 'BEGIN { printf "| decode latin-print, %s | %s | %s | %.1f | %.0f | %s |\n", r, w, t, b - a, n / (b - a), s }'
  done
} | tee "$OUT/decode.md"
# Text alone (the tsv's third column), CPU ONNX against CUDA PyTorch: scores may differ in the last digits.
cut -f1,3 /tmp/decode-onnx-cpu-0.tsv > /tmp/a.txt; cut -f1,3 "/tmp/decode-torch-$DEVICE-4.tsv" > /tmp/b.txt
echo "text differs on $(diff /tmp/a.txt /tmp/b.txt | grep -c '^>') of $LINES lines"; diff /tmp/a.txt /tmp/b.txt | head -8
head -3 /tmp/b.txt

stamp pytest
# One torch thread per xdist worker: 14 workers of 16 threads each starve the 16 cores.
OMP_NUM_THREADS=1 timeout "${PYTEST_SECONDS:-150}" $PY -m pytest -v -p no:cacheprovider -n "${PYTEST_JOBS:-14}" \
  --timeout 120 > "$OUT/pytest.log" 2>&1
grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.log" | tail -25
stamp done
