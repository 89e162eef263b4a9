#!/usr/bin/env bash
# The `dsv4 serve` end-to-end tests: the openai SDK test, then the web page
# test in headless Chromium.
#
#   bash tests/serve/run.sh [DSV4_BIN [MODEL_DIR]]
#
# DSV4_BIN defaults to build/dsv4. DSV4_SERVE_TESTS=sdk runs only the SDK test
# (as with a ThreadSanitizer build, whose slower server gets
# DSV4_SERVE_TIME_SCALE times the time limits). Without MODEL_DIR a random-weight model
# with the real tokenizer is synthesized into a temporary folder. The openai
# npm package (v4) goes into ${DSV4_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dsv4-node},
# outside the source tree, once. Node.js >= 18 is needed (installed with apt
# when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:-$root/build/dsv4}")
model=${2:+$(realpath "$2")}
cd "$root"
[[ -x $bin ]] || { echo "FAIL serve tests: no dsv4 binary at $bin"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "serve tests: installing nodejs npm" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
fi
need=()
command -v curl >/dev/null || need+=(curl)
[[ -n ${CHROMIUM:-} ]] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
  command -v google-chrome >/dev/null || need+=(chromium)
if ((${#need[@]})); then  # page_test.sh would do it too, but within its time limit
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "serve tests: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || { echo "FAIL serve tests: Node.js $node_major is too old (need 18+)"; exit 1; }

node_dir=${DSV4_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dsv4-node}
if ! node -e 'process.exit(require(process.argv[1]).version.startsWith("4.") ? 0 : 1)' \
       "$node_dir/node_modules/openai/package.json" 2>/dev/null; then
  echo "serve tests: npm install openai@4 into $node_dir" >&2
  mkdir -p "$node_dir"
  timeout 300 npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error openai@4 >&2
fi

if [[ -z $model ]]; then
  model=$tmp/model
  timeout 120 "$bin" synth --like tiny --vocab 129280 --tokenizer tests/data/tokenizer/tokenizer.json \
    --out "$model" >/dev/null 2>"$tmp/synth.err" || { cat "$tmp/synth.err"; echo "FAIL serve tests: synth"; exit 1; }
fi

# Both run, whatever the first gives; the first failure is the exit status.
status=0
t0=$SECONDS
sdk=0
scale=${DSV4_SERVE_TIME_SCALE:-1}
DSV4_NODE_DIR=$node_dir timeout $((150 * scale)) node tests/serve/sdk_test.mjs "$bin" "$model" || sdk=$?
echo "serve tests: sdk_test exit $sdk in $((SECONDS - t0)) s"
page=0
if [[ ${DSV4_SERVE_TESTS:-all} != sdk ]]; then
  t0=$SECONDS
  timeout 240 bash tests/serve/page_test.sh "$bin" "$model" || page=$?
  echo "serve tests: page_test exit $page in $((SECONDS - t0)) s"
fi
((sdk == 0)) || status=$sdk
((status != 0 || page == 0)) || status=$page
if ((status == 0)); then echo "PASS serve tests"; else echo "FAIL serve tests"; fi
exit "$status"
