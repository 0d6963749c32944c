#!/usr/bin/env bash
# The scale checks of issues 15 and 17 as one device call: one CUDA build of the torch-only tree, one
# random Qwen2.5-VL-3B-shaped model, then tools/gpu/learner_scale.sh (SFT + RL step against transformers)
# and tools/gpu/generation_speed.sh (generation against transformers' generate), then the CUDA model tests.
# Run: OUT=... DEADLINE=480 bash tools/gpu/scale_check.sh, carry [".gpudeps"].
# Results: $OUT/scale_check.txt (this script), the two scripts' logs, $OUT/model_test.txt, and every JSON
# result in $OUT/results.tar.
# MODEL_TEST_FILTER (a gtest filter, default all) narrows the CUDA model tests.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
DEADLINE=${DEADLINE:-480}
export BUILD_DIR=/tmp/b MODEL_DIR=/tmp/qwen25vl_3b_random
B=$BUILD_DIR
log() { echo "=== $1 ($(date +%T), ${SECONDS}s of ${DEADLINE}s)" | tee -a "$OUT/scale_check.txt"; }

log "machine"
{ nvidia-smi -L; python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'; } \
  >>"$OUT/scale_check.txt" 2>&1

log "dependencies + configure"
source tools/gpu/cuda_build.sh
gpu_env
cuda_configure $B "$OUT/build.txt"

log "build (the two benches first, then the model tests)"
timeout 200 ninja -C $B -k 0 -j16 learner_scale_bench gpu_generate_bench >>"$OUT/build.txt" 2>&1
echo "benches: exit $?" | tee -a "$OUT/scale_check.txt"
grep -E "error|FAILED" "$OUT/build.txt" | head -20 | tee -a "$OUT/scale_check.txt"
# The CUDA graph capture (decode_graphs_cuda.cc) is the one file no CPU machine compiles: if it broke
# the build, build again without it (the decode windows then run eagerly) rather than lose the run.
if grep -q "FAILED: .*decode_graphs_cuda" "$OUT/build.txt"; then
  log "rebuild with -DR1R_CUDA_GRAPHS=OFF"
  cmake -S . -B $B -DR1R_CUDA_GRAPHS=OFF >>"$OUT/build.txt" 2>&1
  timeout 150 ninja -C $B -k 0 -j16 learner_scale_bench gpu_generate_bench >>"$OUT/build.txt" 2>&1
  echo "benches without CUDA graphs: exit $?" | tee -a "$OUT/scale_check.txt"
fi

log "random model"
PYTHONUNBUFFERED=1 timeout 90 python3 tools/gpu/make_random_model.py "$MODEL_DIR" >>"$OUT/scale_check.txt" 2>&1
echo "model: exit $?" | tee -a "$OUT/scale_check.txt"

# Each script gets an equal share of what is left, keeping 60 s for the model tests.
share=$(( (DEADLINE - SECONDS - 60) / 2 ))
log "learner_scale.sh (${share}s)"
DEADLINE=$share bash tools/gpu/learner_scale.sh
log "generation_speed.sh"
share=$(( DEADLINE - SECONDS - 60 ))
DEADLINE=$share bash tools/gpu/generation_speed.sh

log "model tests on CUDA"
left=$(( DEADLINE - SECONDS - 5 ))
if (( left > 20 )); then
  timeout $((left / 2)) ninja -C $B -j16 model_test >>"$OUT/build.txt" 2>&1
  timeout $((DEADLINE - SECONDS - 5)) stdbuf -o0 $B/tests/unit/model/model_test --gtest_filter="${MODEL_TEST_FILTER:-*}" >"$OUT/model_test.txt" 2>&1
  echo "model_test exit $?" | tee -a "$OUT/scale_check.txt"
  grep -E "^\[ *(FAILED|PASSED) *\]|tests? ran" "$OUT/model_test.txt" | tee -a "$OUT/scale_check.txt"
fi
log "summaries"
tail -12 "$OUT/learner_scale.txt" "$OUT/generation_speed.txt" 2>/dev/null
# At most 8 files come back from a device run: the JSON results travel as one tar.
(cd "$OUT" && tar -cf results.tar ./*.json && rm -f ./*.json)
echo "done in ${SECONDS}s"
