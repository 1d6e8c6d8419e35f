#!/bin/sh
# Test-only: what a cloud fake's "instance" runs, so that an end-to-end test drives the whole agent
# path as a real pod VM would (the test pod VM image's init does the same: podvm-image/initramfs/init).
#
#   instance_runner.sh start <ip> <user-data file>   process-user-data on the user-data the provider
#                                                     sent, then podvm-test-agent (the TEST AGENT) and
#                                                     agent-protocol-forwarder on <ip>:15150 with the
#                                                     apf.json it wrote (mutual TLS)
#   instance_runner.sh stop <ip>                      stops them (by pid) and removes their files
#
# Environment: PP_BIN_DIR (our binaries), RUNNER_ROOT (one directory per instance under it).
set -eu
cmd=$1
ip=$2
root=${RUNNER_ROOT:?RUNNER_ROOT is not set}
bin=${PP_BIN_DIR:?PP_BIN_DIR is not set}
dir=$root/$ip

case $cmd in
start)
  mkdir -p "$dir/peerpod"
  if ! "$bin/process-user-data" --user-data-file "$3" --output-dir "$dir/peerpod" >"$dir/log" 2>&1; then
    echo "instance $ip: process-user-data failed:" >&2
    cat "$dir/log" >&2
    exit 1
  fi
  "$bin/podvm-test-agent" --socket "$dir/agent.sock" >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/agent.pid"
  "$bin/agent-protocol-forwarder" --listen "$ip:15150" --config "$dir/peerpod/apf.json" \
    --kata-agent-socket "$dir/agent.sock" --pod-namespace "$dir/no-podns" >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/forwarder.pid"
  ;;
stop)
  [ -d "$dir" ] || exit 0
  for f in "$dir"/forwarder.pid "$dir"/agent.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  # Wait (bounded) for both to exit so that nothing of the instance outlives its deletion.
  for _ in $(seq 1 50); do
    alive=0
    for f in "$dir"/forwarder.pid "$dir"/agent.pid; do
      [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
    done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for f in "$dir"/forwarder.pid "$dir"/agent.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start <ip> <user-data> | stop <ip>" >&2
  exit 2
  ;;
esac
