#!/bin/bash
# Builds and runs every test: unit and integration tests in an optimized build
# and again under AddressSanitizer/UndefinedBehaviorSanitizer, after a short
# libFuzzer run of the RESP scanner (FUZZ_SECONDS, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/deps.sh
jobs=$(nproc)

cmake -S . -B build -DNEARCACHE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DNEARCACHE_WERROR=ON -DNEARCACHE_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
CC=clang cmake -S . -B build-fuzz -DNEARCACHE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_resp -j"$jobs"

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp tests/fuzz/corpus/* "$corpus/"
build-fuzz/tests/fuzz_resp -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 \
    "$corpus" 2>&1 | tail -3

ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure
ctest --test-dir build --output-on-failure
