#!/usr/bin/env bash
# libFuzzer targets for the torch-free parsers, built with clang (ASan + UBSan, fatal) from only the
# sources each needs, outside the CMake build. Each target runs for FUZZ_SECONDS (default 30) on a copy
# of its seed corpus (tools/fuzz/corpus/<target>); a crash, leak, sanitizer report or timeout fails.
#
#   tools/fuzz/fuzz.sh                 # build all, run each ~30 s
#   tools/fuzz/fuzz.sh job_spec        # one target
#   FUZZ_SECONDS=300 tools/fuzz/fuzz.sh
#   FUZZ_BUILD_ONLY=1 tools/fuzz/fuzz.sh
#
# Needs clang and its fuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev) and the dev
# packages the project already uses (abseil, nlohmann-json, yaml-cpp, ICU, libpng, libjpeg).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-30}
cxx=${FUZZ_CXX:-clang++}
jobs=${FUZZ_JOBS:-2}

declare -A sources=(
  [tokenizer_json]="common/tokenizer/added_tokens.cc common/tokenizer/bpe_model.cc common/tokenizer/byte_level.cc
                    common/tokenizer/pretokenizer.cc common/tokenizer/tokenizer.cc common/tokenizer/utf8.cc"
  [bpe_encode]="common/tokenizer/added_tokens.cc common/tokenizer/bpe_model.cc common/tokenizer/byte_level.cc
                common/tokenizer/pretokenizer.cc common/tokenizer/tokenizer.cc common/tokenizer/utf8.cc"
  [jsonl_readers]="common/jsonl/jsonl.cc common/jsonl/read_report.cc common/data/readers.cc common/reward/answer_order.cc
                   common/reward/chat.cc common/reward/prompt_template.cc common/reward/rewards.cc
                   common/eval/judgement.cc common/eval/mm_rlhf_bench.cc common/eval/multimodal_rewardbench.cc
                   common/eval/python_random.cc common/eval/vl_rewardbench.cc"
  [job_spec]="common/config/yaml_reader.cc common/config/job_spec.cc common/config/plan.cc"
  [image_decode]="common/vision/decode.cc common/vision/decode_png.cc common/vision/decode_jpeg.cc common/files/paths.cc"
  [safetensors_header]="common/model/safetensors_header.cc"
  [weight_stream]="common/train/weight_stream.cc common/train/weight_codec.cc common/dist/crc32c.cc"
)
# Targets that link LibTorch (Debian's, not instrumented: only r1r's own code is fuzzed and sanitized).
declare -A torch_targets=([weight_stream]=1)
# LibTorch 1.13's headers do not compile with clang in C++20 mode (c10::IValue incomplete): C++17 for these.
torch_cflags="-std=c++17 -I/usr/include/torch/csrc/api/include"
torch_sources=" common/train/weight_stream.cc common/train/weight_codec.cc "
torch_libs="-ltorch -ltorch_cpu -lc10"
# Seeds beyond tools/fuzz/corpus/<target>: the project's own fixtures in those formats.
declare -A extra_seeds=(
  [jsonl_readers]="tests/fixtures/benchmarks"
  [job_spec]="configs"
  [image_decode]="tests/unit/vision/testdata"
)
# plan.cc may use the learner memory plan when it is in the tree.
[ -f "$root/common/config/memory_plan.cc" ] && sources[job_spec]+=" common/config/memory_plan.cc"

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tokenizer_json bpe_encode jsonl_readers job_spec image_decode safetensors_header weight_stream)

command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
libs=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format absl_flat_hash_map \
  absl_flat_hash_set absl_synchronization absl_hash absl_span yaml-cpp icu-uc icu-i18n libpng libjpeg)
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-std=c++20 -O1 -g -I$root $san"

mkdir -p "$out/obj"
# Objects are shared between targets and rebuilt when their source or a header it includes (from the
# compiler's dependency file) is newer: a stale object after a header change mixes struct layouts.
compile() {
  local src=$1 obj="$out/obj/${1//\//_}.o" dep="$out/obj/${1//\//_}.d"
  local stale=1 f
  if [ -f "$obj" ] && [ -f "$dep" ]; then
    stale=
    for f in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$dep"); do
      [ "$f" -nt "$obj" ] && { stale=1; break; }
    done
  fi
  if [ -n "$stale" ]; then
    local extra=""; [[ "$torch_sources" == *" $src "* ]] && extra=$torch_cflags
    "$cxx" $cflags $extra -fsanitize=fuzzer-no-link -MMD -MF "$dep" -c "$root/$src" -o "$obj"
  fi
}
export -f compile; export cxx cflags out root torch_cflags torch_sources
all=$(for t in "${targets[@]}"; do echo ${sources[$t]}; done | tr ' ' '\n' | grep . | sort -u)
start=$(date +%s)
printf '%s\n' $all | xargs -P "$jobs" -I{} bash -c 'compile {}'
for t in "${targets[@]}"; do
  objs=$(for s in ${sources[$t]}; do echo "$out/obj/${s//\//_}.o"; done)
  extra=""; [ -n "${torch_targets[$t]:-}" ] && extra="$torch_cflags $torch_libs"
  "$cxx" $cflags -fsanitize=fuzzer "$root/tools/fuzz/${t}_fuzz.cc" $objs $libs $extra -o "$out/${t}_fuzz"
done
echo "fuzz: built ${#targets[@]} target(s) in $(( $(date +%s) - start )) s into $out"
[ -n "${FUZZ_BUILD_ONLY:-}" ] && exit 0

failed=()
for t in "${targets[@]}"; do
  work="$out/corpus/$t" art="$out/artifacts/$t/"
  mkdir -p "$work" "$art"
  log="$out/$t.log"
  echo "fuzz: $t for ${secs} s (log $log)"
  if "$out/${t}_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
       -artifact_prefix="$art" -print_final_stats=1 "$work" "$root/tools/fuzz/corpus/$t" \
       ${extra_seeds[$t]:+"$root/${extra_seeds[$t]}"} >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done" "$log" | tr '\n' ' '; echo
  else
    echo "fuzz: $t FAILED, see $log and $art"; tail -30 "$log"
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failing targets: ${failed[*]}"; exit 1; }
echo "fuzz: all targets clean"
