#!/usr/bin/env bash
# The main job: generate the bundled demo model if absent and chat with it.
# Pass -m DIR (and any other `dsv4 run` options) to use real weights instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
if [[ " $* " != *" -m "* ]]; then
  model=build/demo-model
  if [[ ! -f $model/config.json ]]; then
    ./build/dsv4 synth --like tiny --vocab 129280 --tokenizer tests/data/tokenizer/tokenizer.json --out "$model"
  fi
  set -- -m "$model" "$@"
fi
exec ./build/dsv4 run "$@"
