#!/usr/bin/env bash
# The main job on the embedded default, on one machine: the cloud-api-adaptor with its libvirt
# provider creates a real pod VM from the test image (QEMU, KVM when it really works, TCG
# otherwise), the VM's forwarder comes up with mutual TLS (the adaptor's own CA), and peerpodctl,
# speaking to the adaptor as the kata shim does, gets a grpc.Health answer from the VM's (test)
# agent through the whole chain, then stops the sandbox. libvirtd runs in a network namespace of
# its own (libvirt-netns.sh), and everything is removed afterwards.
#
#   deploy/local/demo.sh [build-dir]   (as root, or through sudo, which it asks for itself)      (default: build, as `cmake --workflow --preset build` makes it)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ "${1:-}" = "--inside" ]; then
  # Inside the namespace: run the adaptor, drive one sandbox, stop the adaptor.
  build=$2
  work=$(mktemp -d /tmp/pp-demo.XXXXXX)
  adaptor_pid=""
  finish() {
    local rc=$?
    if [ -n "$adaptor_pid" ]; then
      kill "$adaptor_pid" 2>/dev/null || true
      wait "$adaptor_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$work/adaptor.log" ]; then
      echo "---- cloud-api-adaptor log (last 30 lines) ----"
      tail -30 "$work/adaptor.log"
    fi
    rm -rf "$work"
    exit "$rc"
  }
  trap finish EXIT
  echo "demo: cloud-api-adaptor libvirt (pool $LIBVIRT_POOL, network $LIBVIRT_NET, base volume $LIBVIRT_VOL_NAME)"
  "$build/bin/cloud-api-adaptor" libvirt -socket "$work/hypervisor.sock" -pods-dir "$work/pods" \
    -tls-dir "$work/tls" -firmware none -cpu 1 -memory 512 >"$work/adaptor.log" 2>&1 &
  adaptor_pid=$!
  for _ in $(seq 1 100); do
    [ -S "$work/hypervisor.sock" ] && break
    kill -0 "$adaptor_pid" 2>/dev/null || { echo "demo: the adaptor exited" >&2; exit 1; }
    sleep 0.1
  done
  "$build/bin/peerpodctl" --socket "$work/hypervisor.sock" --pods-dir "$work/pods" run --pod demo
  exit $?
fi

build=$(cd "${1:-$root/build}" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  # libvirtd and a network namespace need root: ask sudo, as `./setup.sh` does.
  command -v sudo >/dev/null || { echo "demo: run as root (libvirtd, a network namespace)" >&2; exit 2; }
  exec sudo "$0" "$@"
fi
cmake --build "$build" --target cloud-api-adaptor peerpodctl podvm-test-image
exec "$here/libvirt-netns.sh" --image "$build/podvm/podvm-test.qcow2" -- "$0" --inside "$build"
