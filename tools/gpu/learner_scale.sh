#!/usr/bin/env bash
# The learner at scale on one lent GPU (issue 15): a Qwen2.5-VL-3B-shaped random model (the published 3B
# config's dimensions, written here: no network) in bf16_mixed with activation checkpointing, one SFT step
# and one RL step of 2048 tokens with a 448x448 image (256 image tokens), timed after a warm-up step.
# Prints the peak allocated device memory next to the memory plan (common/config/memory_plan.h) and the
# tokens/s next to the same steps in PyTorch + transformers (tools/gpu/hf_learner_step.py: bf16, gradient
# checkpointing, AdamW over an fp32 master; the same safetensors and the same batch), as ratios.
#
# Run: BUILD_DIR=/tmp/b OUT=... bash tools/gpu/learner_scale.sh   (carry [".gpudeps"] when it must build)
# - BUILD_DIR with tools/bench/learner_scale_bench already built: no build (a shared build of several
#   scripts: configure with -DR1R_BENCH=ON and build the target learner_scale_bench); otherwise it
#   configures and builds learner_scale_bench like device_check.sh (torch-only, R1R_BENCH=ON, ~1 min).
# - DEADLINE (default 235): seconds of wall time for the whole script; every stage has its own timeout,
#   cut to what is left, and a failed stage does not stop the later ones.
# Results: two files (a device run returns few): $OUT/learner_scale.txt (the log) and
# $OUT/learner_scale.json (both runs, the plan and the ratios).
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec >>"$OUT/learner_scale.txt" 2>&1
DEADLINE=${DEADLINE:-235}
B=${BUILD_DIR:-/tmp/b}
MODEL=${MODEL_DIR:-/tmp/qwen25vl_3b_random}
BATCH=/tmp/learner_scale_batch.safetensors
source tools/gpu/cuda_build.sh  # stage, run, gpu_env, cuda_configure

rm -f "$BATCH" /tmp/learner_scale_r1r.json /tmp/learner_scale_hf.json  # an earlier run's must not stand in
stage "machine"
run 20 nvidia-smi -L
run 30 python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'

stage "build"
if [ -x "$B/tools/bench/learner_scale_bench" ]; then
  echo "using $B/tools/bench/learner_scale_bench (already built)"
else
  gpu_env
  cuda_configure $B /tmp/ls_configure.txt
  echo "[configure exit $? after ${SECONDS}s]"
  tail -3 /tmp/ls_configure.txt
  run 150 ninja -C $B -k 0 -j16 learner_scale_bench > /tmp/ls_build.txt 2>&1
  grep -E "error|FAILED" /tmp/ls_build.txt | head -20; tail -2 /tmp/ls_build.txt
fi
[ -n "${DEPS:-}" ] || { [ -d /tmp/deps ] && export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}; }

stage "random Qwen2.5-VL-3B-shaped model (bf16 safetensors)"
if [ -f "$MODEL/config.json" ]; then echo "reusing $MODEL"; else
  PYTHONUNBUFFERED=1 run 75 python3 tools/gpu/make_random_model.py "$MODEL"
fi
ls -la "$MODEL" 2>/dev/null | head

stage "r1r: SFT + RL step, bf16_mixed, checkpointing, 2048 tokens, 448x448 image"
run 70 stdbuf -o0 "$B/tools/bench/learner_scale_bench" --model_dir="$MODEL" --device=cuda --tokens=2048 --image=448 \
  --response=1024 --precision=bf16_mixed --checkpointing=1 --steps=2 --batch_out=$BATCH > /tmp/ls_r1r.txt 2>&1
cat /tmp/ls_r1r.txt | tail -8
grep '^{' /tmp/ls_r1r.txt | tail -1 > /tmp/learner_scale_r1r.json
[ -s /tmp/learner_scale_r1r.json ] || echo "no r1r result"

stage "PyTorch + transformers: the same steps on the same safetensors and batch"
if [ -f $BATCH ]; then
  PYTHONUNBUFFERED=1 run 70 python3 tools/gpu/hf_learner_step.py "$MODEL" $BATCH 2 > /tmp/ls_hf.txt 2>&1
  tail -6 /tmp/ls_hf.txt
  grep '^{' /tmp/ls_hf.txt | tail -1 > /tmp/learner_scale_hf.json
  [ -s /tmp/learner_scale_hf.json ] || echo "no transformers result"
else
  echo "skipped: the r1r run wrote no batch"
fi

stage "summary"
run 20 python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join("/tmp", name)))
    except Exception as e:
        print("missing", name, e)
        return {}
r, h = load("learner_scale_r1r.json"), load("learner_scale_hf.json")
gib = 1024 ** 3
s = {"r1r": r, "transformers": h}
if r:
    peak = max(r.get("sft_peak_bytes", -1), r.get("rl_peak_bytes", -1))
    s["peak_gib"] = peak / gib
    s["plan_gib"] = r.get("plan_allocator_bytes", 0) / gib
    s["plan_error"] = r.get("plan_error")
    print(f"peak {peak / gib:.2f} GiB (SFT {r.get('sft_peak_bytes', 0) / gib:.2f}, RL {r.get('rl_peak_bytes', 0) / gib:.2f}); "
          f"plan {s['plan_gib']:.2f} GiB without the CUDA context; plan error {s['plan_error']}")
    print("plan terms GiB:", {k: round(v / gib, 2) for k, v in r.get("plan_terms", {}).items()})
if r and h:
    for phase in ("sft", "rl"):
        ratio = r[f"{phase}_tokens_per_second"] / h[f"{phase}_tokens_per_second"]
        s[f"{phase}_tokens_per_second_ratio"] = ratio
        print(f"{phase}: r1r {r[f'{phase}_tokens_per_second']:.0f} tokens/s, transformers "
              f"{h[f'{phase}_tokens_per_second']:.0f} tokens/s, ratio {ratio:.2f}; peak r1r "
              f"{r[f'{phase}_peak_bytes'] / gib:.2f} GiB, transformers {h[f'{phase}_peak_bytes'] / gib:.2f} GiB")
json.dump(s, open(os.path.join(out, "learner_scale.json"), "w"), indent=1)
PY
echo "done in ${SECONDS}s"
