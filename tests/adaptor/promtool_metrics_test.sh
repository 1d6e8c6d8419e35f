#!/usr/bin/env bash
# Lints the daemon's metrics exposition with `promtool check metrics` (Prometheus's own checker of
# the text format and its naming conventions, https://prometheus.io/docs/practices/naming/).
# Usage: promtool_metrics_test.sh <metrics_exposition binary>. Fails on any finding, even one that
# promtool itself only warns about.
set -euo pipefail
exposition=$1
command -v promtool >/dev/null || { echo "promtool missing: run setup.sh (Debian package prometheus)" >&2; exit 1; }
text=$("$exposition")
# A broken exposition must not pass as an empty one.
grep -q '^peerpods_build_info{version=' <<<"$text" || { echo "no peerpods_build_info in the exposition" >&2; exit 1; }
set +e
findings=$(promtool check metrics <<<"$text" 2>&1)
status=$?
set -e
if [ "$status" -ne 0 ] || [ -n "$findings" ]; then
  echo "promtool check metrics (exit $status):" >&2
  echo "$findings" >&2
  exit 1
fi
echo "promtool check metrics: $(grep -c '^# TYPE' <<<"$text") metric families, no findings"
