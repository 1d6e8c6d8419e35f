#!/usr/bin/env bash
# Builds the fuzz target with clang (its own build tree) and fuzzes for a bounded time.
# Usage: run.sh <source dir> <seconds>. Exit status non-zero if the fuzzer found anything.
set -euo pipefail
src=$1
seconds=${2:-60}
cd "$src"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp tests/fuzz/corpus/* "$work/"
./build-fuzz/bin/fuzz_ttrpc_frame -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" "$work" 2>&1 | tail -n 5
