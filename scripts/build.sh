#!/usr/bin/env bash
# Configures and builds into build/ (or $1 with extra CMake arguments after it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >&2
cmake --build "$dir" -j "$(nproc)" >&2
