# Sourced by the GPU scripts (scale_check.sh, learner_scale.sh, generation_speed.sh): stages under a
# deadline, and the torch-only CUDA build against the machine's PyTorch. The other dependencies come from
# .gpudeps/ (fetch_deps.sh).
#   stage NAME                     print a stage header with the seconds used of $DEADLINE
#   run LIMIT CMD...               CMD under a timeout cut to what is left of $DEADLINE; logs its exit code
#   gpu_env                        unpack .gpudeps into /tmp/deps; library, CUDA and compiler paths
#   cuda_configure DIR [LOG]       configure DIR (cuDNN from the nvidia.cudnn wheel when it is there;
#                                  otherwise, or when that fails, without cuDNN); output to LOG
stage() { echo; echo "=== $1 ($(date +%T), ${SECONDS}s of ${DEADLINE}s)"; }
# run LIMIT CMD...: the command under a timeout cut to the time left; logs its exit code.
run() {
  local limit=$1; shift
  local left=$(( DEADLINE - SECONDS - 5 ))
  (( limit > left )) && limit=$left
  if (( limit < 5 )); then echo "skipped: no time left"; return 124; fi
  timeout --kill-after=5 "$limit" "$@"
  local rc=$?
  echo "[exit $rc after ${SECONDS}s]"
  return $rc
}

gpu_env() {
  DEPS=/tmp/deps
  mkdir -p $DEPS && for f in .gpudeps/*.deb; do [ -f "$f" ] && dpkg -x "$f" $DEPS; done
  export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export PATH=/usr/local/cuda/bin:$PATH
}

cuda_configure() {
  local dir=$1 log=${2:-/dev/null}
  local torch_prefix cudnn
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  cudnn=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  configure_once() {
    timeout 90 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DR1R_SERVICES=OFF -DR1R_BENCH=ON -DR1R_CUDA=ON \
      -DCMAKE_PREFIX_PATH="$DEPS/usr;$torch_prefix" -DCMAKE_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu \
      -DCMAKE_CXX_FLAGS="-isystem $DEPS/usr/include/x86_64-linux-gnu" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "$@"
  }
  # An existing build dir (another script's) keeps its cache; R1R_BENCH=ON adds the bench targets.
  { [ -n "$cudnn" ] && configure_once -DCUDNN_INCLUDE_PATH="$cudnn/include" -DCUDNN_LIBRARY_PATH="$cudnn/lib"; } >"$log" 2>&1 ||
    { [ -f "$dir/CMakeCache.txt" ] || rm -rf "$dir"; configure_once -DCAFFE2_USE_CUDNN=OFF -DUSE_CUDNN=OFF >>"$log" 2>&1; }
}
