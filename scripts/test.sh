#!/usr/bin/env bash
# Builds dsv4 and runs every test (CTest, the real-Slurm test, the server tests
# with the OpenAI SDK and headless Chromium); then rebuilds the loader and CLI tests under
# AddressSanitizer + UBSan and runs those again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)")
bash scripts/slurm/test.sh
bash tests/serve/run.sh build/dsv4
bash scripts/build.sh build-asan -DDSV4_SANITIZE=ON -DDSV4_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L '^(loader|cli)$')
