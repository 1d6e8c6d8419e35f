#!/usr/bin/env bash
# cloud-api-adaptor's command line as an operator meets it: every mistake gets a clear answer on
# stderr with the documented exit code (2: bad command line or configuration, 1: cannot start),
# nothing is created on a refusal, and a setup that cannot work says so before the first pod.
#
#   cli_test.sh <cloud-api-adaptor> <adaptor_test_daemon> <peerpods-health-probe>
set -euo pipefail
caa=$1
daemon=$2
probe=$3
dir=$(mktemp -d /tmp/pp-cli.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; exit 1; }
passed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }

# expect <rc> <stderr pattern> <command...>: runs the command, checks its exit code and stderr.
expect() {
  local want_rc=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "$* exited $rc, want $want_rc: $(cat "$dir/err")"
  grep -qE -- "$pattern" "$dir/err" || fail "$*: stderr does not match '$pattern': $(cat "$dir/err")"
}

# waits until the daemon's socket exists (or it exited)
wait_socket() {
  for _ in $(seq 1 100); do [ -S "$1" ] && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.1; done
  return 1
}

expect 2 "unknown provider 'ibmcloud'; built in: aws, azure, gcp, libvirt" "$caa" ibmcloud -socket "$dir/x.sock"
pass unknown_provider_names_the_built_in_ones

"$caa" help libvirt >"$dir/help" 2>&1 || fail "help libvirt: $(cat "$dir/help")"
grep -q -- "--uri" "$dir/help" && grep -q "LIBVIRT_URI" "$dir/help" || fail "help libvirt: $(cat "$dir/help")"
for provider in aws azure gcp; do
  "$caa" help $provider >"$dir/help" 2>&1 || fail "help $provider: $(cat "$dir/help")"
done
grep -q "AWS_ENDPOINT_URL_EC2" <("$caa" help aws 2>&1) || fail "help aws does not name AWS_ENDPOINT_URL_EC2"
expect 2 "unknown provider 'ibmcloud'" "$caa" help ibmcloud
pass help_shows_a_providers_flags

FORWARDER_PORT=0 expect 2 "^cloud-api-adaptor: FORWARDER_PORT: 0 is out of range \(1 to 65535\)" \
  "$daemon" test -socket "$dir/a.sock" -pods-dir "$dir/pods-a"
expect 2 "^cloud-api-adaptor: -forwarder-port: \"abc\" is not a number" \
  "$daemon" test -socket "$dir/a.sock" -pods-dir "$dir/pods-a" -forwarder-port abc
expect 2 "-log-level: unknown log level \"loud\"" "$daemon" test -socket "$dir/a.sock" -log-level loud
[ ! -e "$dir/a.sock" ] && [ ! -e "$dir/pods-a" ] || fail "a refused start created files"
pass bad_values_name_their_flag_or_variable

long="$dir/$(printf 'd%.0s' $(seq 1 120))/hv.sock"
expect 2 "a unix socket path holds at most 107 bytes" "$daemon" test -socket "$long" -pods-dir "$dir/pods-b"
[ ! -e "$(dirname "$long")" ] || fail "a refused socket path created its directory"
expect 1 "-pods-dir / PODS_DIR: cannot create /proc/nope" "$daemon" test -socket "$dir/b.sock" -pods-dir /proc/nope
pass unusable_paths_are_refused_before_serving

# Go's flag package keeps the last of a repeated flag; LOG_LEVEL=warning is what log lines say.
LOG_LEVEL=warning "$daemon" test -socket "$dir/c.sock" -pods-dir "$dir/first" -pods-dir "$dir/second" \
  >"$dir/c.log" 2>&1 &
pids+=($!)
wait_socket "$dir/c.sock" $! || fail "daemon with a repeated flag: $(cat "$dir/c.log")"
[ -d "$dir/second" ] && [ ! -e "$dir/first" ] || fail "a repeated flag did not keep its last value"
pass repeated_flag_keeps_the_last_and_warning_is_a_level

# A libvirt that cannot be reached: the adaptor serves, and says at once that pods cannot start.
LIBVIRT_URI="qemu+unix:///system?socket=$dir/no-libvirtd" \
  "$caa" libvirt -socket "$dir/d.sock" -pods-dir "$dir/pods-d" -tls-dir "$dir/tls-d" >"$dir/d.log" 2>&1 &
pids+=($!)
wait_socket "$dir/d.sock" $! || fail "adaptor with an unreachable libvirt did not serve: $(cat "$dir/d.log")"
for _ in $(seq 1 100); do grep -q "provider not ready" "$dir/d.log" && break; sleep 0.1; done
grep -q "provider not ready: .*no-libvirtd.*pods cannot start until this is fixed" "$dir/d.log" \
  || fail "no warning about the unreachable libvirt: $(cat "$dir/d.log")"
pass unreachable_provider_is_reported_at_start

# JSON logs: every line one object with time, level and msg.
LOG_FORMAT=json "$daemon" test -socket "$dir/e.sock" -pods-dir "$dir/pods-e" -pause-image pause:3.9 \
  >"$dir/e.out" 2>"$dir/e.log" &
epid=$!
pids+=($epid)
wait_socket "$dir/e.sock" $epid || fail "daemon with json logs: $(cat "$dir/e.log")"
kill -TERM "$epid"; wait "$epid" || fail "daemon with json logs exited non-zero"
python3 - "$dir/e.log" <<'PY' || fail "json log lines: $(cat "$dir/e.log")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 3, lines
for line in lines:
    o = json.loads(line)
    assert set(o) in ({"time", "level", "msg"}, {"time", "level", "msg", "sandbox", "pod"}), o
assert any("-pause-image is accepted" in json.loads(l)["msg"] for l in lines), lines
PY
[ ! -s "$dir/e.out" ] || fail "logs went to stdout: $(cat "$dir/e.out")"
pass json_logs_on_stderr

# gRPC health (grpc.health.v1) as kubelet's gRPC probe sees it: SERVING once the provider is
# verified and the sandboxes are reloaded, NOT_SERVING (exit 4) or gone after SIGTERM.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$daemon" test -socket "$dir/h.sock" -pods-dir "$dir/pods-h" -health-port "$port" >"$dir/h.log" 2>&1 &
hpid=$!
pids+=($hpid)
wait_socket "$dir/h.sock" $hpid || fail "daemon with health: $(cat "$dir/h.log")"
rc=1
for _ in $(seq 1 100); do
  rc=0; "$probe" -addr "127.0.0.1:$port" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && break
  sleep 0.1
done
[ "$rc" -eq 0 ] || fail "health never SERVING (last probe exit $rc): $(cat "$dir/h.log")"
"$probe" -addr "127.0.0.1:$port" -service cloud-api-adaptor >/dev/null || fail "health of service cloud-api-adaptor"
# A second daemon on the same health port is refused at start, naming the port and the flag.
expect 1 "port $port is in use.*-health-port / HEALTH_PORT" \
  "$daemon" test -socket "$dir/h2.sock" -pods-dir "$dir/pods-h2" -health-port "$port"
kill -TERM "$hpid"; wait "$hpid" || fail "daemon with health exited non-zero"
rc=0; "$probe" -addr "127.0.0.1:$port" -connect-timeout 300ms >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "health still answering after exit (probe exit $rc)"
pass grpc_health_serving_refused_twice_and_gone_after_exit

echo "$passed passed, 0 failed"
