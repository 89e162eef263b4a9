#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang-14 (ASan + UBSan)
# into build-fuzz, then fuzzes each one for a bounded time, starting from a
# copy of its seed corpus (tests/fuzz/corpus/NAME is not modified), and
# prints one line per harness. Exits 1 if any harness found something; the
# line names the input that triggers it. docs/fuzzing.md has the details.
#
#   scripts/fuzz.sh [--merge] [--jobs N] [SECONDS] [HARNESS...]
#
# SECONDS: fuzzing time per harness (default 20; 3600 for a campaign).
# HARNESS: names as in tests/fuzz/NAME_fuzz.cc (default: all of them).
# --jobs N: harnesses fuzzed at once (default: the number of CPUs), each on
#   one core.
# --merge: afterwards, merge the inputs that reach new coverage into the
#   repository's corpus (tests/fuzz/corpus/NAME), to review and commit.
# Environment: DSV4_FUZZ_BUILD (build directory, default build-fuzz),
#   DSV4_FUZZ_CXXFLAGS (default "-O1 -gline-tables-only"; -O0 builds in about
#   half the time but fuzzes 4 to 8 times fewer inputs per second).
set -euo pipefail
cd "$(dirname "$0")/.."

merge=0
jobs=$(nproc)
seconds=20
harnesses=()
while (($#)); do
  case "$1" in
    --merge) merge=1 ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) seconds="$1" ;;
    *) harnesses+=("$1") ;;
  esac
  shift
done
if ((${#harnesses[@]} == 0)); then
  for f in tests/fuzz/*_fuzz.cc; do harnesses+=("$(basename "$f" _fuzz.cc)"); done
fi
for h in "${harnesses[@]}"; do
  [[ -f tests/fuzz/${h}_fuzz.cc ]] || { echo "fuzz: no harness tests/fuzz/${h}_fuzz.cc" >&2; exit 2; }
done

build=${DSV4_FUZZ_BUILD:-build-fuzz}
command -v clang++-14 >/dev/null || { echo "fuzz: clang++-14 not found (bash scripts/setup.sh installs it)" >&2; exit 2; }
start=$(date +%s)
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DDSV4_FUZZ=ON -DDSV4_BUILD_BENCHMARKS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${DSV4_FUZZ_CXXFLAGS:--O1 -gline-tables-only}" >"$build/cmake.log" 2>&1 \
  || { cat "$build/cmake.log" >&2; exit 2; }
ninja -C "$build" -j "$(nproc)" "${harnesses[@]/%/_fuzz}" >"$build/ninja.log" 2>&1 || { tail -50 "$build/ninja.log" >&2; exit 2; }
echo "fuzz: built ${#harnesses[@]} harnesses in $(($(date +%s) - start)) s ($build)"

runs="$build/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$runs"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One harness: fuzz a copy of the corpus, then write its summary line.
fuzz_one() {
  local h=$1 dir="$runs/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp tests/fuzz/corpus/"$h"/* "$dir/corpus/" 2>/dev/null || true
  local rc=0 failed_input=""
  # Big regression inputs (tests/fuzz/regress/NAME) run once each, not as seeds.
  if [[ -d tests/fuzz/regress/$h ]]; then
    "$build/tests/fuzz/${h}_fuzz" -rss_limit_mb=2048 -timeout=10 tests/fuzz/regress/"$h"/* >"$dir/log" 2>&1 || {
      rc=$?
      failed_input=$(grep -o 'Running: .*' "$dir/log" | tail -1 | sed 's/^Running: //')
    }
  fi
  if ((rc == 0)); then
    "$build/tests/fuzz/${h}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  fi
  local execs cov units
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | grep -o '[0-9]*' || echo "?")
  units=$(find "$dir/corpus" -type f | wc -l)
  local artifact
  artifact=${failed_input:-$(find "$dir/artifacts" -type f | head -1)}
  if ((rc == 0)) && [[ -z $artifact ]]; then
    printf '%-18s ok       %8s runs, coverage %5s, corpus %4s inputs\n' "$h" "$execs" "$cov" "$units" >"$dir/summary"
  else
    local what
    what=$(grep -m1 -E 'FUZZ FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$dir/log" || echo "exit $rc")
    printf '%-18s FINDING  %s\n%-18s          input: %s  log: %s\n' "$h" "$what" "" "${artifact:-none}" "$dir/log" \
      >"$dir/summary"
  fi
}

running=0
for h in "${harnesses[@]}"; do
  fuzz_one "$h" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

status=0
for h in "${harnesses[@]}"; do
  cat "$runs/$h/summary"
  grep -q FINDING "$runs/$h/summary" && status=1
  if ((merge)); then
    "$build/tests/fuzz/${h}_fuzz" -merge=1 -rss_limit_mb=2048 -timeout=10 tests/fuzz/corpus/"$h" "$runs/$h/corpus" \
      >"$runs/$h/merge.log" 2>&1 || { echo "fuzz: merging $h failed ($runs/$h/merge.log)" >&2; status=1; }
  fi
done
((merge)) && echo "fuzz: new inputs merged into tests/fuzz/corpus (see git status)"
echo "fuzz: $((${#harnesses[@]})) harnesses x ${seconds} s in $(($(date +%s) - start)) s; runs in $runs"
if ((status)); then
  echo "fuzz: FINDINGS above; replay one with $build/tests/fuzz/NAME_fuzz INPUT, or add it as tests/fuzz/corpus/NAME/regress-WHAT (docs/fuzzing.md)" >&2
fi
exit $status
