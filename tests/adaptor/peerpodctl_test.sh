#!/usr/bin/env bash
# peerpodctl against the real daemon with the test-only in-memory provider (adaptor_test_daemon):
# create, start, list, stop and their exit codes; a refused request; Ctrl-C during `run` stops the
# sandbox. The agent check needs a pod VM: tests/go libvirte2e and deploy/local/demo.sh cover it.
#
#   peerpodctl_test.sh <peerpodctl> <adaptor_test_daemon>
set -euo pipefail
ctl=$1
daemon=$2
dir=$(mktemp -d /tmp/pp-ctl.XXXXXX)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; exit 1; }

"$daemon" test -socket "$dir/hv.sock" -pods-dir "$dir/pods" >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do [ -S "$dir/hv.sock" ] && break; sleep 0.1; done
c() { "$ctl" --socket "$dir/hv.sock" --pods-dir "$dir/pods" "$@"; }

c create ctl-1 --pod web --memory 512 | grep -q "ok   CreateVM" || fail "create"
[ -d "$dir/pods/ctl-1" ] || fail "create wrote no record"
c start ctl-1 | grep -q "ok   StartVM" || fail "start"
c list | grep -E "^ctl-1 +default/web +running +test-" >/dev/null || fail "list: $(c list)"
c stop ctl-1 | grep -q "ok   StopVM" || fail "stop"
[ ! -e "$dir/pods/ctl-1" ] || fail "stop left the record"
echo "PASS create_start_list_stop"

if out=$(c create 'bad id!' 2>&1); then fail "a bad sandbox id was accepted: $out"; fi
echo "$out" | grep -q "INVALID_ARGUMENT" || fail "bad id: $out"
if out=$(c start no-such-sandbox 2>&1); then fail "start of an unknown sandbox succeeded"; fi
echo "$out" | grep -q "NOT_FOUND" || fail "unknown sandbox: $out"
echo "PASS refusals_exit_non_zero"

# The test provider makes "slow-" pods take a while: interrupt run while StartVM waits. (SIGTERM:
# a non-interactive shell starts background jobs with SIGINT ignored.)
"$ctl" --socket "$dir/hv.sock" --pods-dir "$dir/pods" run --pod slow-ctl --id ctl-2 >"$dir/run.out" 2>&1 &
run_pid=$!
for _ in $(seq 1 100); do grep -q "StartVM: creating" "$dir/run.out" && break; sleep 0.1; done
kill -TERM "$run_pid"
rc=0
wait "$run_pid" || rc=$?
[ "$rc" -eq 143 ] || fail "run exited $rc after SIGTERM, want 143: $(cat "$dir/run.out")"
grep -q "ok   StopVM" "$dir/run.out" || fail "run did not stop the sandbox: $(cat "$dir/run.out")"
[ ! -e "$dir/pods/ctl-2" ] || fail "the interrupted sandbox's record is left"
echo "PASS run_interrupted_stops_the_sandbox"
