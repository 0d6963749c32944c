#!/bin/sh
# The runtime layer shared by deploy/docker/Dockerfile (binaries built from source) and
# deploy/docker/Dockerfile.prebuilt (binaries of an existing build/): the Debian runtime libraries the
# binaries link, OpenBLAS behind libblas.so.3, the non-root user r1r (10001) and /var/lib/r1r, and
# links for the CLI and the services. Run as root inside the image build:
#   runtime-setup.sh debian     LibTorch from Debian (libtorch1.13, CPU)
#   runtime-setup.sh pytorch    LibTorch shipped beside the binaries (Dockerfile.cuda)
# No compilers, headers, test libraries, Node.js or npm: those belong to the build stage only.
set -eu
torch=${1:?usage: runtime-setup.sh debian|pytorch}
export DEBIAN_FRONTEND=noninteractive
pkgs="ca-certificates tini libgomp1
  libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1
  libyaml-cpp0.7 libspdlog1.10 libfmt9
  libpng16-16 libjpeg62-turbo libicu72 libcurl4 libssl3 zlib1g"
case "$torch" in
  # Debian's LibTorch pulls its own dependencies (dnnl, gloo, sleef, glog, gflags, ...); it calls
  # whatever libblas.so.3 points at, so OpenBLAS comes with it.
  debian) pkgs="$pkgs libtorch1.13 libopenblas0-pthread" ;;
  pytorch) ;;
  *) echo "runtime-setup.sh: unknown LibTorch source '$torch' (debian | pytorch)" >&2; exit 2 ;;
esac
apt-get update -qq
# shellcheck disable=SC2086  # the list is split on purpose
apt-get install -y -q --no-install-recommends $pkgs
rm -rf /var/lib/apt/lists/*
if [ "$torch" = debian ]; then
  # Debian's LibTorch calls whatever libblas.so.3 points at; the reference BLAS is about 28x slower
  # than OpenBLAS for fp32 matmul. Fail the build if the alternatives do not end at OpenBLAS.
  for alt in $(update-alternatives --get-selections | awk '/^lib(blas|lapack)\.so\.3-/{print $1}'); do
    cand=$(update-alternatives --list "$alt" | grep openblas | head -n1 || true)
    if [ -n "$cand" ]; then update-alternatives --set "$alt" "$cand"; fi
  done
  blas=$(readlink -f "/usr/lib/$(uname -m)-linux-gnu/libblas.so.3")
  case "$blas" in *openblas*) ;; *) echo "runtime-setup.sh: libblas.so.3 is $blas, not OpenBLAS" >&2; exit 1 ;; esac
fi
groupadd --system --gid 10001 r1r
useradd --system --uid 10001 --gid r1r --home-dir /var/lib/r1r --shell /usr/sbin/nologin r1r
mkdir -p /var/lib/r1r/state /var/lib/r1r/work /var/lib/r1r/data /var/lib/r1r/models /opt/r1r/bin
chown -R r1r:r1r /var/lib/r1r
ln -sf /opt/r1r/bin/r1r /usr/local/bin/r1r
for s in orchestrator learner actor reward judge serve; do ln -sf "/opt/r1r/bin/r1r-$s" "/usr/local/bin/r1r-$s"; done
