#!/usr/bin/env bash
# Builds every fuzz target with clang (its own build tree) and fuzzes each for a bounded time.
# Usage: run.sh <source dir> <seconds per target>. Exit status non-zero if any fuzzer found anything.
set -euo pipefail
src=$1
seconds=${2:-60}
cd "$src"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# target  seed corpus  max input length
targets=(
  "fuzz_ttrpc_frame tests/fuzz/corpus 70000"
  "fuzz_apf_config tests/fuzz/corpus_apf 16384"
  "fuzz_user_data tests/fuzz/corpus_userdata 16384"
  "fuzz_ec2_xml tests/fuzz/corpus_ec2xml 65536"
  "fuzz_arm_json tests/fuzz/corpus_arm 65536"
  "fuzz_gcp_response tests/fuzz/corpus_gcp 65536"
  "fuzz_http_request tests/fuzz/corpus_http 16384"
  "fuzz_attest tests/fuzz/corpus_attest 16384"
  "fuzz_model_format tests/fuzz/corpus_model 65536"
)
status=0
for entry in "${targets[@]}"; do
  read -r target corpus max_len <<<"$entry"
  mkdir -p "$work/$target"
  cp "$corpus"/* "$work/$target/"
  echo "== $target: ${seconds}s"
  # libFuzzer prints a heap profile before saving an out-of-memory input, which can take forever
  # under ptrace restrictions: the outer timeout keeps this script from hanging.
  if ! timeout --signal=KILL $((seconds * 2 + 120)) \
      ./build-fuzz/bin/"$target" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -timeout=30 -artifact_prefix="$work/$target-" "$work/$target" \
      >"$work/$target.log" 2>&1; then
    status=1
    tail -n 40 "$work/$target.log"
    for crash in "$work/$target"-*; do
      [ -e "$crash" ] && cp "$crash" "$src/build-fuzz/" && echo "reproducer kept: build-fuzz/$(basename "$crash")"
    done
  else
    tail -n 3 "$work/$target.log"
  fi
done
exit $status
