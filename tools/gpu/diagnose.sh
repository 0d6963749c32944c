#!/usr/bin/env bash
# One prepared run on a lent GPU machine that finds where a CUDA build crashes (tools/gpu/README.md:
# on 2026-11-26 model_test and sft_learnability_bench --device=cuda died with SIGSEGV).
# Builds with debug info, lists the binaries' weak undefined symbols, runs every model test in its own
# process, and takes cuda-gdb backtraces of the first crashing test and of the bench. Output is
# unbuffered: a crash loses buffered stdout.
# Run: bash tools/gpu/diagnose.sh, with carry [".gpudeps"]; results in $OUT/log.txt.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec >>"$OUT/log.txt" 2>&1
stage() { echo; echo "=== $1 ($(date +%T), ${SECONDS}s)"; }
backtrace() {  # backtrace CMD...: the stack, and the return address on top of it (a jump to 0 has no frame)
  timeout 150 cuda-gdb -q -batch -ex "set pagination off" -ex run -ex "bt 30" -ex "x/6a \$sp" --args "$@" 2>&1 |
    grep -v "^\[New Thread\|^\[Thread .* exited\|^warning:" | tail -60
}

stage "machine"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'

stage "dependencies"
DEPS=/tmp/deps
mkdir -p $DEPS && for f in .gpudeps/*.deb; do dpkg -x "$f" $DEPS; done
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export PATH=/usr/local/cuda/bin:$PATH

stage "configure + build (CUDA, RelWithDebInfo)"
B=/tmp/b
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DR1R_SERVICES=OFF -DR1R_BENCH=ON -DR1R_CUDA=ON \
  -DCMAKE_PREFIX_PATH="$DEPS/usr;$TORCH_PREFIX" -DCMAKE_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu \
  -DCMAKE_CXX_FLAGS="-isystem $DEPS/usr/include/x86_64-linux-gnu" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCAFFE2_USE_CUDNN=OFF -DUSE_CUDNN=OFF 2>&1 | grep -i "r1r\|error" | head
time timeout 300 ninja -C $B -k 0 -j16 model_test sft_learnability_bench 2>&1 | grep -E "error|FAILED" | head -30

stage "weak undefined symbols (a call through one that stays unresolved jumps to 0)"
for b in $B/tests/unit/model/model_test $B/tools/bench/sft_learnability_bench; do
  echo "$(basename "$b"):"; nm -D --undefined-only "$b" | awk '$1 == "w" {print "  " $2}' | grep -v "_ITM_\|__gmon_start__\|__cxa_finalize"
done

stage "model_test, every test in its own process (CUDA hidden except for CudaMatchesCpu)"
$B/tests/unit/model/model_test --gtest_list_tests | awk '/^[^ ]/ {suite=$1} /^  / {print suite $1}' > /tmp/tests.txt
run_one() {
  local visible=(); [[ $1 == *Cuda* ]] || visible=(CUDA_VISIBLE_DEVICES=)
  env "${visible[@]}" timeout 120 "$B/tests/unit/model/model_test" --gtest_filter="$1" > "/tmp/t_$1.txt" 2>&1
  local rc=$? verdict
  verdict=$(grep -o "PASSED\|FAILED\|SKIPPED" "/tmp/t_$1.txt" | tail -1)
  echo "$1 exit $rc ${verdict:-crashed}"
}
export -f run_one; export B
xargs -P 8 -I{} bash -c 'run_one {}' < /tmp/tests.txt | sort
for f in /tmp/t_*.txt; do grep -q "Failure" "$f" && { echo "--- $f"; grep -A6 "Failure" "$f" | head -20; }; done

CRASH=$(for f in /tmp/t_*.txt; do grep -q "PASSED\|FAILED\|SKIPPED" "$f" || basename "$f" .txt | sed 's/^t_//'; done | head -1)
stage "backtrace of the first crashing test: ${CRASH:-none}"
[ -n "$CRASH" ] && CUDA_VISIBLE_DEVICES='' backtrace $B/tests/unit/model/model_test --gtest_filter="$CRASH"

stage "sft_learnability_bench, small, cuda, under cuda-gdb"
backtrace $B/tools/bench/sft_learnability_bench --device=cuda --n=200 --heldout=40 --image_size=112 \
  --min_pixels=12544 --max_pixels=12544 --grid=2 --max_count=3 --questions=all --prompt_style=compact \
  --trace=tally --freeze_vision=1 --epochs=1
stage "done"
