#!/usr/bin/env bash
# Runs a command beside a private libvirt: a network namespace of its own, so that libvirt's NAT
# network and its dnsmasq never touch the host's network; virtlogd and libvirtd started inside it;
# a transient NAT network and a transient directory storage pool holding the base volume.
# On every exit path it destroys and undefines the pod VMs (domains carrying the peer-pods
# metadata), stops the network and the pool, kills every process left in the namespace (libvirtd,
# virtlogd, dnsmasq, QEMU) by pid, deletes the namespace and the pool directory.
#
#   deploy/local/libvirt-netns.sh --image <podvm.qcow2> [--volume podvm-base.qcow2] -- <command> [args...]
#
# The command runs inside the namespace with LIBVIRT_URI, LIBVIRT_POOL, LIBVIRT_NET and
# LIBVIRT_VOL_NAME set; its exit status is the script's. Needs root. Refuses to run beside another
# libvirtd (they would share /run/libvirt).
set -euo pipefail

image=""
volume="podvm-base.qcow2"
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image="$2"; shift 2 ;;
    --volume) volume="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "libvirt-netns: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 --image <qcow2> [--volume name] -- command..." >&2; exit 2; }
[ -n "$image" ] && [ -f "$image" ] || { echo "libvirt-netns: --image $image: no such file" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "libvirt-netns: run as root" >&2; exit 2; }
for tool in ip libvirtd virtlogd virsh qemu-img; do
  command -v "$tool" >/dev/null || { echo "libvirt-netns: $tool not found (run setup.sh)" >&2; exit 2; }
done
if pgrep -x libvirtd >/dev/null; then
  echo "libvirt-netns: a libvirtd is already running (pid $(pgrep -x libvirtd | tr '\n' ' ')); stop it first" >&2
  exit 2
fi
# On a systemd host, a socket-activated libvirtd would start in the root namespace on our first
# virsh call (and bring its NAT network up there).
if command -v systemctl >/dev/null && systemctl is-active --quiet libvirtd.socket libvirtd-ro.socket 2>/dev/null; then
  echo "libvirt-netns: libvirtd.socket is active on this host; stop it first (systemctl stop libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket)" >&2
  exit 2
fi

ns="pp-libvirt-$$"
net="peerpods"
pool="peerpods-$$"
metadata_uri="https://confidentialcontainers.org/peerpods/libvirt/1"
pool_dir=$(mktemp -d /var/tmp/pp-pool.XXXXXX)
chmod 0755 "$pool_dir"  # QEMU runs as libvirt-qemu and must reach the volumes
run_dir=$(mktemp -d /tmp/pp-libvirt.XXXXXX)
virsh_ns() { timeout 60 ip netns exec "$ns" virsh -q -c qemu:///system "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ip netns list | grep -qw "$ns"; then
    if [ -S /run/libvirt/libvirt-sock ]; then
      for dom in $(virsh_ns list --all --name 2>/dev/null); do
        # Only pod VMs: domains with the peer-pods metadata.
        if virsh_ns metadata "$dom" "$metadata_uri" >/dev/null 2>&1; then
          echo "libvirt-netns: removing leftover domain $dom" >&2
          virsh_ns destroy "$dom" >/dev/null 2>&1 || true
          virsh_ns undefine "$dom" --nvram >/dev/null 2>&1 || virsh_ns undefine "$dom" >/dev/null 2>&1 || true
        fi
      done
      virsh_ns net-destroy "$net" >/dev/null 2>&1 || true
      # libvirtd autostarts the packaged `default` network, here inside the namespace: stop it too.
      virsh_ns net-destroy default >/dev/null 2>&1 || true
      virsh_ns pool-destroy "$pool" >/dev/null 2>&1 || true
    fi
    local daemons=""
    for pidfile in "$run_dir/libvirtd.pid" "$run_dir/virtlogd.pid"; do
      [ -f "$pidfile" ] && daemons="$daemons $(cat "$pidfile")"
    done
    for pid in $daemons; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    # Whatever is still in the namespace (QEMU, dnsmasq, a daemon that ignored SIGTERM).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    # Until they are gone (10 s at most): a run started right after this one refuses to start
    # beside a libvirtd that is still exiting.
    for _ in $(seq 1 100); do
      local alive=""
      for pid in $daemons $(ip netns pids "$ns" 2>/dev/null); do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    ip netns del "$ns" 2>/dev/null || true
  fi
  rm -rf "$pool_dir" "$run_dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" virtlogd -d -p "$run_dir/virtlogd.pid"
ip netns exec "$ns" libvirtd -d -p "$run_dir/libvirtd.pid"
for _ in $(seq 1 100); do
  virsh_ns version >/dev/null 2>&1 && break
  sleep 0.1
done
virsh_ns version >/dev/null

cat >"$run_dir/net.xml" <<EOF
<network>
  <name>$net</name>
  <forward mode='nat'/>
  <bridge name='ppbr0' stp='on' delay='0'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.150.10' end='192.168.150.250'/></dhcp>
  </ip>
</network>
EOF
virsh_ns net-create "$run_dir/net.xml" >/dev/null
cp --sparse=always "$image" "$pool_dir/$volume"
virsh_ns pool-create-as "$pool" dir --target "$pool_dir" >/dev/null

# In the background, so that a SIGTERM or SIGINT reaches it now (and the cleanup follows) rather
# than after it ends on its own.
ip netns exec "$ns" env LIBVIRT_URI=qemu:///system LIBVIRT_POOL="$pool" LIBVIRT_NET="$net" \
  LIBVIRT_VOL_NAME="$volume" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' INT TERM
rc=0
while :; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
