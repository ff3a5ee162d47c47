#!/usr/bin/env bash
# Issue 26's GPU figures, in two device calls (the device tool gives 10 minutes a command, 15 a session; the
# steps' caps add up to 420 s and 300 s):
#     bash experiments/bench/gpu_session.sh test_gpu bench profile              # on the GPU machine, from the
#     bash experiments/bench/gpu_session.sh fit_etth1 fit_etth1_graphs dna      # checkout's root
# With no arguments every step runs (make gpu-session), one after the other.
# Every step writes under $OUT (default: gpu_session/), and a failing step is recorded and the next one runs:
#   device.txt      nvidia-smi, torch, triton
#   test_gpu.log    make test-gpu (tests/gpu: backends, NeuralMemory, CLIs, save/load, steps without host syncs)
#   bench.log       make bench-gpu (writes bench_memory_gpu.md / .json, copied here)
#   profile.log     experiments/bench/step_profile.py: a forecaster step eager and as CUDA graphs, and the op's
#                   step split by pass (writes step_profile_gpu.md / .json, copied here)
#   fit_etth1.log   titans-ts fit --dataset ETTh1 --horizon 96 --device cuda, wall time (target <= 20 s, test MSE
#                   within 0.003 of the CPU run's 0.3795), and its metrics.json
#   fit_etth1_graphs.log  the same with its training steps replayed as CUDA graphs (TITANS_TS_CUDA_GRAPHS=1)
#   dna.log         titans-dna finetune enhancer_cohn --device cuda, wall time (target <= 90 s)
#   summary.txt     each step's exit code and wall seconds
# The data is the checkout's bundled datasets/ (it travels with the working tree).
set -u
OUT=${OUT:-gpu_session}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
failed=0
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TITANS_CACHE_DIR=/tmp/titans-cache
PYTHON=${GPU_PYTHON:-python3}

step() {  # step NAME TIMEOUT COMMAND...: run, log to $OUT/NAME.log, record the exit code and the wall time
    local name=$1 limit=$2
    shift 2
    local started=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local code=$?
    echo "$name rc=$code wall_s=$((SECONDS - started))" | tee -a "$OUT/summary.txt"
    [ "$code" -eq 0 ] || failed=1
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PYTHON" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} >"$OUT/device.txt" 2>&1

run_step() {
    case $1 in
    test_gpu) step test_gpu 180 make test-gpu GPU_PYTHON="$PYTHON" ;;
    bench)
        step bench 150 make bench-gpu GPU_PYTHON="$PYTHON"
        cp experiments/results/bench_memory_gpu.md experiments/results/bench_memory_gpu.json "$OUT/" 2>/dev/null
        ;;
    profile)
        step profile 90 "$PYTHON" experiments/bench/step_profile.py
        cp experiments/results/step_profile_gpu.md experiments/results/step_profile_gpu.json "$OUT/" 2>/dev/null
        ;;
    fit_etth1 | fit_etth1_graphs)
        local graphs=0
        [ "$1" = fit_etth1_graphs ] && graphs=1
        step "$1" 90 env TITANS_TS_CUDA_GRAPHS=$graphs "$PYTHON" -c "from cli.ts import main; main()" \
            fit --dataset ETTh1 --horizon 96 --device cuda --out "/tmp/gpu_$1" --overwrite
        cp "/tmp/gpu_$1/metrics.json" "$OUT/$1_metrics.json" 2>/dev/null
        ;;
    dna) step dna 120 "$PYTHON" -c "from cli.dna import main; main()" finetune enhancer_cohn --device cuda ;;
    *)
        echo "unknown step $1 (test_gpu, bench, profile, fit_etth1, fit_etth1_graphs, dna)" | tee -a "$OUT/summary.txt"
        failed=1
        ;;
    esac
}

for name in "${@:-test_gpu bench profile fit_etth1 fit_etth1_graphs dna}"; do
    for one in $name; do run_step "$one"; done
done
cat "$OUT/summary.txt"
exit "$failed"
