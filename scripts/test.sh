#!/usr/bin/env bash
# Builds dsv4 and runs every test (CTest, the real-Slurm test, the server tests
# with the OpenAI SDK and headless Chromium); then runs every CTest test again
# under AddressSanitizer + UBSan (float-cast-overflow included); then the
# threaded code that is not OpenMP's (the server's HTTP pool and stepping
# thread, the scheduler, the expert reader) under ThreadSanitizer; last, fuzzes
# every parser for a bounded time (scripts/fuzz.sh, docs/fuzzing.md). Each
# step's time goes to stderr as it ends, so the tail of a log shows where a
# slow run spent it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs one step (a command and its arguments) and says how long it took.
step() {
  local name=$1 t0=$SECONDS
  shift
  "$@"
  echo "test.sh: ${name} took $((SECONDS - t0)) s (${SECONDS} s so far)" >&2
}

step "release build" bash scripts/build.sh build
step "release ctest" ctest --test-dir build --output-on-failure -j "$(nproc)"
step "slurm test" bash scripts/slurm/test.sh
step "serve tests" bash tests/serve/run.sh build/dsv4

# Sanitized builds: -O2 with line tables only (-g1), which give the reports their file:line at a
# fraction of -g's build time.
sanitized=(-DDSV4_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
step "asan build" bash scripts/build.sh build-asan -DDSV4_SANITIZE=ON "${sanitized[@]}"
step "asan ctest" ctest --test-dir build-asan --output-on-failure -j "$(nproc)"

# ThreadSanitizer over the threads dsv4 starts itself: the expert cache's reader
# (paged_experts_test) and the server's HTTP pool and stepping thread (the SDK
# test). libgomp is not instrumented for TSan, so one OpenMP thread
# (OMP_NUM_THREADS=1, which dsv4 honours). A race stops the process
# (halt_on_error) and fails the test.
step "tsan build" env DSV4_TARGETS="dsv4 paged_experts_test" \
  bash scripts/build.sh build-tsan -DDSV4_SANITIZE_THREAD=ON "${sanitized[@]}"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# The paged_experts tests whose store does not page start no thread of dsv4's: they run above.
step "tsan paged experts" env OMP_NUM_THREADS=1 build-tsan/tests/paged_experts_test \
  --gtest_filter='-*EveryExpertResident*:*ResidentWeightsSurvive*:*TheMtpBlockIsResident*:*StoreRestoresTheMapping*'
step "tsan serve sdk" env OMP_NUM_THREADS=1 DSV4_SERVE_TESTS=sdk DSV4_SERVE_TIME_SCALE=10 DSV4_SERVE_SANITIZER=thread \
  bash tests/serve/run.sh build-tsan/dsv4
unset TSAN_OPTIONS

# What the bounded run finds is printed with its input, not fatal: the corpus replays above are the
# gate, and a random new finding must not turn unrelated work red. Fix each as a regression case.
step "fuzz" bash -c 'bash scripts/fuzz.sh 10 || echo "fuzz: the bounded run found inputs to fix (listed above)" >&2'
