#!/usr/bin/env bash
# Generation at GPU speed (issue 17), one prepared run of at most 4 minutes on a lent GPU: a Qwen2.5-VL-3B-
# shaped random model in bf16 (tools/gpu/make_random_model.py: the published 3B dimensions, no network),
# greedy generation of 256 tokens at batch 1, 32 and 128 from 512-token prompts holding a 448x448 image
# (256 image tokens), by r1r (tools/bench/gpu_generate_bench: continuous batching, device sampling,
# causal prefill, decode steps replayed from CUDA graphs; the batch sizes in EAGER_BATCHES, default 1, run
# again without the graphs) and by transformers' generate (tools/gpu/hf_generate.py: sdpa, the same safetensors, the
# same prompts) in the same run; the batch-1 decode rate as a fraction of the memory-bandwidth roofline
# (text weight bytes + KV bytes per token over BANDWIDTH_TBS, 4.8 for an H200).
#
# Run: OUT=... bash tools/gpu/generation_speed.sh   (carry [".gpudeps"] when it must build)
# - BUILD_DIR (default /tmp/b): a torch-only CUDA build dir; reused when gpu_generate_bench is built
#   there (e.g. shared with tools/gpu/learner_scale.sh), otherwise configured and built like
#   device_check.sh (-DR1R_SERVICES=OFF -DR1R_BENCH=ON).
# - MODEL_DIR (default /tmp/qwen25vl_3b_random): reused when it holds a model (learner_scale.sh makes the
#   same one).
# - DEADLINE (default 235 s): wall time for the whole script; every stage has its own timeout, cut to what
#   is left; a failed stage does not stop the later ones. BATCHES (default 1,32,128).
# Results: $OUT/generation_speed.txt (log), $OUT/generation_speed_r1r.json, $OUT/generation_speed_hf.json,
# $OUT/generation_speed.json (both, with the ratios).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec >>"$OUT/generation_speed.txt" 2>&1
DEADLINE=${DEADLINE:-235}
B=${BUILD_DIR:-/tmp/b}
MODEL=${MODEL_DIR:-/tmp/qwen25vl_3b_random}
BATCHES=${BATCHES:-1,32,128}
EAGER_BATCHES=${EAGER_BATCHES-1}
PROMPTS=/tmp/generation_speed_prompts.safetensors
source tools/gpu/cuda_build.sh  # stage, run, gpu_env, cuda_configure

stage "machine"
run 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
run 30 python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'

stage "build"
gpu_env
if [ -x "$B/tools/bench/gpu_generate_bench" ] && [ "${REBUILD:-0}" != 1 ]; then
  echo "using $B/tools/bench/gpu_generate_bench (already built)"
else
  cuda_configure $B /tmp/gs_configure.txt
  echo "[configure exit $? after ${SECONDS}s]"
  tail -3 /tmp/gs_configure.txt
  run 150 ninja -C $B -k 0 -j16 gpu_generate_bench > /tmp/gs_build.txt 2>&1
  grep -E "error|FAILED" /tmp/gs_build.txt | head -20; tail -2 /tmp/gs_build.txt
fi

stage "random Qwen2.5-VL-3B-shaped model (bf16 safetensors)"
if ls "$MODEL"/*.safetensors > /dev/null 2>&1 && [ -f "$MODEL/config.json" ]; then
  echo "using $MODEL"
else
  PYTHONUNBUFFERED=1 run 90 python3 tools/gpu/make_random_model.py "$MODEL"
fi
ls -la "$MODEL" 2>/dev/null | head

# What is left is shared: 45% for r1r, the rest for transformers (slower, and it loads the model again).
SHARE=$(( (DEADLINE - SECONDS - 15) * 45 / 100 ))
stage "r1r: gpu_generate_bench (batches $BATCHES, ${SHARE}s)"
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True run $SHARE stdbuf -o0 "$B/tools/bench/gpu_generate_bench" \
  --model_dir="$MODEL" --device=cuda --dtype=bf16 --batches="$BATCHES" --prompt_tokens=512 --image_px=448 \
  --new_tokens=256 --eager_batches="$EAGER_BATCHES" --bandwidth_tbs="${BANDWIDTH_TBS:-4.8}" --prompts_out=$PROMPTS --json_out="$OUT/generation_speed_r1r.json"

stage "transformers generate (sdpa), same weights and prompts"
if [ -f $PROMPTS ]; then
  PYTHONUNBUFFERED=1 run $(( DEADLINE - SECONDS - 15 )) python3 tools/gpu/hf_generate.py "$MODEL" $PROMPTS "$OUT/generation_speed_hf.json" \
    --batches "$BATCHES" --new 256
else
  echo "no prompts file: the r1r stage did not get as far as writing it"
fi

stage "summary"
run 20 python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception as e:
        print(f"{name}: {e}")
        return None
ours, hf = load("generation_speed_r1r.json"), load("generation_speed_hf.json")
rows, summary = [], {"r1r": ours, "transformers": hf, "ratio_tokens_per_s": {}}
for run in (ours or {}).get("runs", []):
    b, graphs = run["batch"], run.get("cuda_graphs", False)
    theirs = next((r for r in (hf or {}).get("runs", []) if r["batch"] == b and "tokens_per_s" in r), None)
    ratio = run["tokens_per_s"] / theirs["tokens_per_s"] if theirs else None
    summary["ratio_tokens_per_s"][f"{b}{'' if graphs else '_eager'}"] = ratio
    rows.append(f"| {b} | {'yes' if graphs else 'no'} | {run['tokens_per_s']:.1f} | {run['decode_tokens_per_s']:.1f} | "
                f"{theirs['tokens_per_s'] if theirs else float('nan'):.1f} | {ratio if ratio else float('nan'):.2f}x |")
print("| batch | r1r CUDA graphs | r1r tokens/s | r1r decode tokens/s | transformers tokens/s | r1r / transformers |")
print("|------:|:---------------:|-------------:|--------------------:|----------------------:|-------------------:|")
print("\n".join(rows))
if ours and "batch1_roofline_fraction" in ours:
    print(f"batch-1 decode: {ours['batch1_decode_tokens_per_s']:.1f} tokens/s = "
          f"{100 * ours['batch1_roofline_fraction']:.1f}% of the roofline ({ours['roofline_tokens_per_s']:.1f} tokens/s)")
if ours and hf and ours.get("batch1_tokens") and hf.get("batch1_tokens"):
    a, b = ours["batch1_tokens"], hf["batch1_tokens"]
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    summary["batch1_same_prefix_tokens"] = same
    print(f"batch-1 greedy tokens: the first {same} of {min(len(a), len(b))} agree (random bf16 weights: near-ties)")
json.dump(summary, open(os.path.join(out, "generation_speed.json"), "w"), indent=1)
PY
echo "done after ${SECONDS}s"
