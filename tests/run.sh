#!/bin/bash
# Builds and runs every test: unit and integration tests in an optimized build
# and again under AddressSanitizer/UndefinedBehaviorSanitizer, then a stress of
# two workers sharing the tier under ThreadSanitizer, after short
# libFuzzer runs of the RESP scanner (FUZZ_SECONDS, default 30) and of the
# config file and --set/environment loaders (FUZZ_CONFIG_SECONDS each,
# default 15), and the pre-commit hooks on every file.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/deps.sh
jobs=$(nproc)

cmake -S . -B build -DNEARCACHE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DNEARCACHE_WERROR=ON -DNEARCACHE_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
cmake -S . -B build-tsan -DNEARCACHE_WERROR=ON -DNEARCACHE_TSAN=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan --target nearcache -j"$jobs"
CC=clang cmake -S . -B build-fuzz -DNEARCACHE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_resp fuzz_config fuzz_settings fuzz_mcp -j"$jobs"

# Runs fuzz target $1 for $3 seconds on a scratch copy of its seeds: the files
# of tests/fuzz/$2 and any more given after $3.
fuzz() {
    local corpus
    corpus=$(mktemp -d "$scratch/$1.XXXXXX")
    cp "tests/fuzz/$2"/* "${@:4}" "$corpus/"
    build-fuzz/tests/"$1" -max_total_time="$3" -print_final_stats=1 "$corpus" 2>&1 | tail -3
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fuzz fuzz_resp corpus "${FUZZ_SECONDS:-30}"
fuzz fuzz_config corpus_config "${FUZZ_CONFIG_SECONDS:-15}" config/*.yaml
fuzz fuzz_settings corpus_settings "${FUZZ_CONFIG_SECONDS:-15}"
fuzz fuzz_mcp corpus_mcp "${FUZZ_CONFIG_SECONDS:-15}"

# The pre-commit hooks (.pre-commit-config.yaml) on every file of a git checkout.
[ -d .git ] && pre-commit run --all-files

ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure
ctest --test-dir build --output-on-failure
# Two workers reading, filling and invalidating the one tier under
# ThreadSanitizer (STRESS_SECONDS, default 20).
tests/workers/stress_test.py build-tsan/nearcache "${STRESS_SECONDS:-20}"
