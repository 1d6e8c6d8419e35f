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

# The daemon logs every failed call with its sandbox and reason.
grep -q "CreateVM bad?id?: failed in [0-9]* ms: INVALID_ARGUMENT" "$dir/daemon.log" \
  || fail "the refused CreateVM is not in the daemon's log: $(cat "$dir/daemon.log")"
echo "PASS failed_calls_logged_by_the_daemon"

# list: a pods dir that does not exist is an error, an adaptor that does not answer a warning.
if out=$("$ctl" --socket "$dir/hv.sock" --pods-dir "$dir/nope" list 2>&1); then fail "list of a missing pods dir: $out"; fi
echo "$out" | grep -q "pods dir $dir/nope does not exist" || fail "list, missing pods dir: $out"
out=$("$ctl" --socket "$dir/none.sock" --pods-dir "$dir/pods" list 2>&1 >/dev/null)
echo "$out" | grep -q "warning: no adaptor answers on $dir/none.sock" || fail "list, wrong socket: $out"
echo "PASS list_says_when_its_flags_are_wrong"

# check: a sandbox that is created but not started, or unknown, is said so.
c create ctl-3 --pod web >/dev/null
if out=$(c check ctl-3 2>&1); then fail "check of an unstarted sandbox: $out"; fi
echo "$out" | grep -q "sandbox ctl-3 is created, not started" || fail "check, not started: $out"
if out=$(c check ctl-none 2>&1); then fail "check of an unknown sandbox: $out"; fi
echo "$out" | grep -q "no sandbox ctl-none in $dir/pods" || fail "check, unknown: $out"
c stop ctl-3 >/dev/null
echo "PASS check_explains_a_missing_agent_socket"

# run: a failed StartVM deleted its VM already, and --keep keeps a failed sandbox.
out=$(c run --pod fail-web --id ctl-4 2>&1) && fail "run of a failing pod passed: $out"
echo "$out" | grep -q "sandbox removed (the failed StartVM left no VM)" || fail "run, failed start: $out"
[ ! -e "$dir/pods/ctl-4" ] || fail "run left the failed sandbox"
out=$(c run --pod fail-web --id ctl-5 --keep 2>&1) && fail "run --keep of a failing pod passed: $out"
echo "$out" | grep -q "kept as it failed" || fail "run --keep, failed start: $out"
[ -e "$dir/pods/ctl-5" ] || fail "run --keep did not keep the failed sandbox"
c stop ctl-5 >/dev/null
echo "PASS run_reports_what_it_deleted_and_keep_keeps"

# SIGTERM while a provider call never returns: the daemon still exits, within its grace periods.
"$daemon" test -socket "$dir/hang.sock" -pods-dir "$dir/pods-h" -shutdown-grace 1s >"$dir/hang.log" 2>&1 &
hang_pid=$!
for _ in $(seq 1 100); do [ -S "$dir/hang.sock" ] && break; sleep 0.1; done
"$ctl" --socket "$dir/hang.sock" --pods-dir "$dir/pods-h" run --pod hang-web --id ctl-h >"$dir/hang-run.out" 2>&1 &
hang_run=$!
for _ in $(seq 1 100); do grep -q "StartVM: creating" "$dir/hang-run.out" && break; sleep 0.1; done
sleep 0.5  # the StartVM reaches the provider
kill -TERM "$hang_pid"
for _ in $(seq 1 200); do kill -0 "$hang_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$hang_pid" 2>/dev/null; then
  kill -KILL "$hang_pid"
  fail "the daemon did not exit within 20 s of SIGTERM with a provider call hanging: $(cat "$dir/hang.log")"
fi
rc=0; wait "$hang_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the daemon exited $rc after SIGTERM: $(cat "$dir/hang.log")"
grep -q "still running after the grace period" "$dir/hang.log" || fail "no word about the hung call: $(cat "$dir/hang.log")"
kill "$hang_run" 2>/dev/null || true
wait "$hang_run" 2>/dev/null || true
echo "PASS sigterm_exits_with_a_hung_provider_call"

# JSON logs: every line about a sandbox carries its id and pod as fields; text lines name the pod.
# The same daemon serves its probes and metrics: read after a sandbox's lifecycle, by value.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG_FORMAT=json "$daemon" test -socket "$dir/json.sock" -pods-dir "$dir/pods-j" -probe-port "$port" \
  >"$dir/json.log" 2>&1 &
json_pid=$!
for _ in $(seq 1 100); do [ -S "$dir/json.sock" ] && break; sleep 0.1; done
"$ctl" --socket "$dir/json.sock" --pods-dir "$dir/pods-j" create ctl-j1 --pod web >/dev/null || fail "json: create"
"$ctl" --socket "$dir/json.sock" --pods-dir "$dir/pods-j" start ctl-j1 >/dev/null || fail "json: start"
"$ctl" --socket "$dir/json.sock" --pods-dir "$dir/pods-j" stop ctl-j1 >/dev/null || fail "json: stop"
"$ctl" --socket "$dir/json.sock" --pods-dir "$dir/pods-j" create ctl-j2 --pod db >/dev/null || fail "json: create 2"
python3 - "$port" "$dir/metrics.txt" <<'PY' || fail "probes and metrics: $(cat "$dir/json.log")"
import sys, urllib.request, urllib.error
port, out = sys.argv[1], sys.argv[2]
def get(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
assert get("/startup")[0] == 200, get("/startup")
assert get("/readyz")[0] == 200, get("/readyz")
assert get("/livez")[0] == 200, get("/livez")
status, text = get("/metrics")
assert status == 200, status
open(out, "w").write(text)
want = {
    'peerpods_startvm_duration_seconds_count{outcome="ok",provider="test"}': 1,
    'peerpods_provider_calls_total{operation="create",provider="test"}': 1,
    'peerpods_provider_calls_total{operation="delete",provider="test"}': 1,
    'peerpods_sandboxes{state="created"}': 1,
    'peerpods_sandboxes{state="running"}': 0,
    'peerpods_limit_per_node': 10,
    'peerpods_provider_up{provider="test"}': 1,
}
values = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
for name, value in want.items():
    assert values.get(name) == value, (name, values.get(name), value)
PY
command -v promtool >/dev/null || fail "promtool not found: install the Debian package prometheus (setup.sh does)"
out=$(promtool check metrics <"$dir/metrics.txt" 2>&1) || fail "promtool check metrics: $out"
[ -z "$out" ] || fail "promtool check metrics: $out"
"$ctl" --socket "$dir/json.sock" --pods-dir "$dir/pods-j" stop ctl-j2 >/dev/null || fail "json: stop 2"
kill -TERM "$json_pid"; wait "$json_pid" || fail "json: the daemon exited non-zero"
python3 - "$dir/json.log" <<'PY' || fail "json log fields: $(cat "$dir/json.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
about = [o for o in lines if "ctl-j1" in o["msg"]]
assert len(about) >= 3, about  # CreateVM, StartVM, StopVM at least
about = [o for o in lines if "ctl-j" in o["msg"]]
for o in about:
    want = ("ctl-j1", "default/web") if "ctl-j1" in o["msg"] else ("ctl-j2", "default/db")
    assert (o.get("sandbox"), o.get("pod")) == want, o
for o in lines:
    assert set(o) in ({"time", "level", "msg"}, {"time", "level", "msg", "sandbox", "pod"}), o
PY
grep -q '\[info\] \[pod default/web\] CreateVM ctl-1: ok' "$dir/daemon.log" || fail "text log without the pod: $(cat "$dir/daemon.log")"
echo "PASS json_logs_carry_the_sandbox_and_pod_and_metrics_count_its_lifecycle"

echo "9 passed, 0 failed"
