#!/usr/bin/env bash
# The web chat page end to end: a real `dsv4 serve`, headless Chromium loading
# /?prompt=Hello (the page sends it by itself), the dumped DOM checked for a
# finished answer and its stats line, and a screenshot taken.
#
#   bash tests/serve/page_test.sh [DSV4_BIN [MODEL_DIR]]
#
# Chromium is installed with apt when missing; CHROMIUM names another binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:-$root/build/dsv4}")
model=$(realpath "${2:-$root/build/demo-model}")
cd "$root"
shots=${DSV4_PAGE_SHOTS:-}   # a folder to keep the screenshot in

need=()
command -v curl >/dev/null || need+=(curl)
chromium=${CHROMIUM:-}
if [[ -z $chromium ]]; then
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then chromium=$c; break; fi
  done
  [[ -n $chromium ]] || { need+=(chromium); chromium=chromium; }
fi
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "page_test: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

tmp=$(mktemp -d)
server=""
cleanup() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL page_test: $*"
  [[ -s $tmp/server.err ]] && { echo "--- server stderr (tail) ---"; tail -n 15 "$tmp/server.err"; }
  exit 1
}

start_server() {  # ARGS...: a server on a free port; sets $server (its pid) and $base
  : >"$tmp/server.err"
  "$bin" serve -m "$model" --host 127.0.0.1 --port 0 "$@" 2>"$tmp/server.err" &
  server=$!
  local port=""
  for _ in $(seq 300); do
    port=$(sed -n 's|^dsv4 serve: listening on http://[^:]*:\([0-9]*\)$|\1|p' "$tmp/server.err" | head -n 1)
    [[ -n $port ]] && break
    kill -0 "$server" 2>/dev/null || fail "the server exited before listening"
    sleep 0.1
  done
  [[ -n $port ]] || fail "no \"listening on\" line within 30 s"
  base="http://127.0.0.1:$port"
  for _ in $(seq 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health") == 200 ]] && break
    sleep 0.1
  done
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health") == 200 ]] || fail "/health not 200 within 30 s"
  echo "ok   server up on $base ($*)"
}
stop_server() {
  kill -TERM "$server"
  for _ in $(seq 150); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$server" 2>/dev/null && fail "the server still runs 15 s after SIGTERM"
  local rc=0
  wait "$server" || rc=$?
  server=""
  ((rc == 0)) || fail "the server exited with $rc after SIGTERM"
  echo "ok   server stopped"
}

start_server --max-tokens 48

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
browse() {  # URL ARGS...: headless Chromium on URL; its stdout in $tmp/out, stderr in $tmp/chromium.err
  local url=$1; shift
  timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$tmp/profile" --virtual-time-budget=20000 "$@" "$url" >"$tmp/out" 2>"$tmp/chromium.err" ||
    { tail -n 5 "$tmp/chromium.err"; fail "chromium on $url failed (exit $?)"; }
}

# Answered with thinking (the default): reasoning, a stats line.
t0=$(now_ms)
browse "$base/?prompt=Hello" --dump-dom
dom=$(cat "$tmp/out")
grep -q '<body[^>]*data-state="done"' <<<"$dom" ||
  fail "no data-state=\"done\" on <body> (think): $(grep -o '<body[^>]*>' <<<"$dom"; grep -o 'class="stats">.*' <<<"$dom" | head -c 400)"
grep -q '<div class="reasoning">[^<]' <<<"$dom" || fail "no reasoning shown (think)"
stats=$(grep -o '<div class="stats">[^<]*' <<<"$dom" | sed 's/.*>//' | tail -n 1)
grep -Eq '^[0-9]+ tokens · [0-9.–]+ ?tok/s · first token ' <<<"$stats" || fail "stats line (think): \"$stats\""
echo "ok   /?prompt=Hello answered with thinking ($(( $(now_ms) - t0 )) ms): $stats"

# Answered without thinking: a non-empty answer, a stats line.
t0=$(now_ms)
browse "$base/?prompt=Hello&mode=chat" --dump-dom
dom=$(cat "$tmp/out")
grep -q '<body[^>]*data-state="done"' <<<"$dom" || fail "no data-state=\"done\" on <body> (chat)"
answer=$(grep -o '<div class="answer[^"]*">[^<]*' <<<"$dom" | sed 's/.*">//' | tail -n 1)
[[ -n ${answer//[[:space:]]/} ]] || fail "empty answer (chat)"
stats=$(grep -o '<div class="stats">[^<]*' <<<"$dom" | sed 's/.*>//' | tail -n 1)
grep -Eq '^[0-9]+ tokens · [0-9.–]+ ?tok/s · first token ' <<<"$stats" || fail "stats line (chat): \"$stats\""
grep -q '<details' <<<"$dom" && ! grep -q '<details[^>]*hidden' <<<"$dom" && fail "a reasoning block shown without thinking"
echo "ok   /?prompt=Hello&mode=chat answered ($(( $(now_ms) - t0 )) ms): ${#answer} characters; $stats"

# A screenshot of a finished think-max answer.
png=$tmp/page.png
browse "$base/?prompt=Hello&mode=think-max" --screenshot="$png" --window-size=1000,800
[[ -f $png ]] || fail "no screenshot written"
size=$(stat -c %s "$png")
((size > 10000)) || fail "the screenshot is only $size bytes"
[[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "the screenshot is not a PNG"
[[ -n $shots ]] && mkdir -p "$shots" && cp "$png" "$shots/page.png"
echo "ok   screenshot: $size bytes"

stop_server

# A failed request: the page is served without the key, the chat request is
# refused; the page shows the error and says so.
start_server --max-tokens 48 --api-key secret
browse "$base/?prompt=Hello" --dump-dom
dom=$(cat "$tmp/out")
grep -q '<body[^>]*data-state="error"' <<<"$dom" || fail "no data-state=\"error\" on <body> after a 401: $(grep -o '<body[^>]*>' <<<"$dom")"
shown=$(grep -o '<span class="error">[^<]*' <<<"$dom" | sed 's/.*">//' | tail -n 1)
grep -q '401' <<<"$shown" || fail "the error shown is \"$shown\""
echo "ok   without the API key: the page shows \"$shown\""
stop_server
echo "PASS page_test"
