#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages that a torch-only r1r build needs besides LibTorch,
# into .gpudeps/, for tools/gpu/device_check.sh to unpack on a GPU machine that has PyTorch but no apt.
# Add /.gpudeps/ to .git/info/exclude and name .gpudeps in the device run's carry list.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpudeps && cd .gpudeps
apt-get download libabsl-dev libabsl20220623 libgtest-dev libgmock-dev nlohmann-json3-dev libspdlog-dev \
  libspdlog1.10 libfmt-dev libfmt9 libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo libicu-dev libicu72 \
  zlib1g-dev
# No libgloo-dev: a PyTorch wheel's Gloo is a private copy that Debian's headers do not match, so the
# build leaves the Gloo backend out there (common/dist/CMakeLists.txt).
