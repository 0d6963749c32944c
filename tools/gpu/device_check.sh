#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see tools/gpu/README.md): the HF parity fixture, a CUDA build
# of the torch libraries against the machine's PyTorch, the model tests on the GPU, and an SFT sweep of
# the synthetic task. Each stage logs to $OUT and a failed stage does not stop the later ones.
# Needs .gpudeps/ (Debian 12 .debs of the non-torch build dependencies, tools/gpu/fetch_deps.sh).
# Run: DEADLINE=530 bash tools/gpu/device_check.sh, with carry [".gpudeps"]; results in $OUT/log.txt.
# FIXTURE=0 skips regenerating the fixture, SWEEP=none stops after the tests and one short CUDA epoch.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec >>"$OUT/log.txt" 2>&1  # (not a tee process substitution: `wait` would wait for it)
stage() { echo; echo "=== $1 ($(date +%T))"; }

stage "machine"
nvidia-smi -L
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
g++ --version | head -1; cmake --version | head -1; cat /etc/os-release | head -2

if [ "${FIXTURE:-1}" = 1 ]; then
  stage "HF parity fixture"
  # (at most 8 files come back from $OUT: the fixture travels as one tar)
  PYTHONUNBUFFERED=1 timeout 180 python3 tests/fixtures/model/make_hf_tiny.py tests/fixtures/model/hf_tiny && \
    tar -C tests/fixtures/model -cf "$OUT/hf_tiny.tar" hf_tiny
fi

stage "dependencies"
DEPS=/tmp/deps
mkdir -p $DEPS && for f in .gpudeps/*.deb; do dpkg -x "$f" $DEPS; done
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
CUDNN=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)

export PATH=/usr/local/cuda/bin:$PATH
stage "configure + build (CUDA)"
B=/tmp/b
configure() {
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DR1R_SERVICES=OFF -DR1R_BENCH=ON -DR1R_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$DEPS/usr;$TORCH_PREFIX" -DCMAKE_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu \
    -DCMAKE_CXX_FLAGS="-isystem $DEPS/usr/include/x86_64-linux-gnu" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "$@"
}
configure -DCUDNN_INCLUDE_PATH="$CUDNN/include" -DCUDNN_LIBRARY_PATH="$CUDNN/lib" || \
  { rm -rf $B; configure -DCAFFE2_USE_CUDNN=OFF -DUSE_CUDNN=OFF; }
time timeout 300 ninja -C $B -k 0 -j16 model_test train_test dist_test files_test sft_learnability_bench 2>&1 |
  grep -E "error|FAILED" | head -20

stage "tests on the GPU machine"
# Unbuffered and with exit codes: a crash loses buffered output (tools/gpu/diagnose.sh takes backtraces).
for t in model/model_test train/train_test dist/dist_test files/files_test; do
  timeout 120 stdbuf -o0 $B/tests/unit/$t > /tmp/t.txt 2>&1; echo "$t exit $?"
  grep -E "^\[ *(FAILED|SKIPPED|PASSED) *\]|suites? ran" /tmp/t.txt | sort -u | tail -8
done

stage "sft_learnability_bench on cuda, one short epoch"
timeout 120 stdbuf -o0 $B/tools/bench/sft_learnability_bench --device=cuda --n=400 --heldout=80 --image_size=112 \
  --min_pixels=12544 --max_pixels=12544 --grid=2 --max_count=3 --questions=all --prompt_style=compact --trace=tally \
  --freeze_vision=1 --epochs=1; echo "exit $?"
[ "${SWEEP:-}" = none ] && exit 0

LEFT=$(( ${DEADLINE:-560} - SECONDS ))
stage "SFT learnability sweep on cuda, all at once, ${LEFT}s left"
SWEEP=${SWEEP:-tools/gpu/sweep.txt}
BENCH=$B/tools/bench/sft_learnability_bench
while read -r name args; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  ( timeout $((LEFT - 5)) $BENCH --device=cuda --threads=2 $args > "/tmp/sweep_$name.txt" 2>&1; echo "exit $?" >> "/tmp/sweep_$name.txt" ) &
done < "$SWEEP"
wait
for f in /tmp/sweep_*.txt; do echo "--- $(basename "$f" .txt) $(grep -F -- "$(basename "$f" .txt | sed 's/^sweep_//') " "$SWEEP")"; cat "$f"; done > "$OUT/sweep.txt"
cat "$OUT/sweep.txt"
