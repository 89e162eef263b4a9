#!/usr/bin/env bash
# Installs the Debian 12 packages dsv4 builds against (docs/dependencies.md).
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libhwy-dev libdnnl-dev ocl-icd-opencl-dev libcxxopts-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          libpcre2-dev nlohmann-json3-dev libssl-dev libcpp-httplib-dev libeigen3-dev libhwloc-dev
          clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
