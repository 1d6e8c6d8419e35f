#!/usr/bin/env bash
# Builds the unit tests with ThreadSanitizer in their own build tree (preset tsan) and runs them,
# so that every CI run checks the concurrent code for data races.
# Usage: run.sh <source dir>. Exit status non-zero on any test failure or reported race.
set -euo pipefail
src=$1
cd "$src"
cmake --preset tsan >/dev/null
cmake --build --preset tsan
# halt_on_error: a race fails the test that ran into it. second_deadlock_stack: readable reports.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$src/tests/tsan/suppressions.txt ${TSAN_OPTIONS:-}"
# The Go interop tests run against a Go peer, which has its own race detector: leave them out.
./build-tsan/bin/unit_tests --gtest_filter='-GoServerTest.*' --gtest_brief=1
# The clouds: the batched poller's threads, the HTTP client's shared connection cache, and each
# provider's single-flight credentials, tokens and tables under many concurrent creates.
for t in cloud_common_tests http_client_tests aws_provider_tests azure_provider_tests gcp_provider_tests \
  adaptor_pod_network_tests observability_tests; do
  ./build-tsan/bin/$t --gtest_brief=1
done
