#!/bin/bash
# smoke-pod-network.sh <podvm-dir>: a manual check of the test image's pod network, as root, with
# no libvirt and nothing outside two network namespaces it makes: the image from <podvm-dir>
# (podvm-test.qcow2, built by the podvm-test-image target) boots under QEMU (TCG) on a tap device
# in a "node" namespace, which serves it DHCP (busybox udhcpd: 192.168.90.15) and holds the node's
# end of the pod's VXLAN tunnel, built here with iproute2 and tc as cloud-api-adaptor builds it (a
# CNI-like veth into a "pod" namespace, the tunnel moved there as vxlan1, tc mirred redirects both
# ways). The VM gets a cidata ISO whose apf.json carries the pod-network; its forwarder builds the
# VM end and init starts the TEST-ONLY pod-network server (see initramfs/init). Checked: the node
# reaches the server on the pod's IPv4 and IPv6 (GET /), and the VM reaches the node's listeners
# through /cgi-bin/reach. Exit 0 when every check passed. Everything is removed on every path.
set -uo pipefail

die() {
  echo "smoke-pod-network: $*" >&2
  exit 1
}
[[ $# -eq 1 ]] || die "usage: $0 <podvm-dir>"
image=$(cd "$1" 2>/dev/null && pwd)/podvm-test.qcow2
[[ -r $image ]] || die "$image missing: build the podvm-test-image target"
[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces, tap)"
for tool in qemu-system-x86_64 qemu-img xorriso openssl busybox python3 tc ip; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

work=$(mktemp -d /tmp/podvm-smoke.XXXXXX)
node=ppsmoke$$-node
pod=ppsmoke$$-pod
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  [[ -s $work/qemu.pid ]] && kill "$(cat "$work/qemu.pid")" 2>/dev/null
  [[ -s $work/udhcpd.pid ]] && kill "$(cat "$work/udhcpd.pid")" 2>/dev/null
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null; done
  sleep 1
  ip netns del "$pod" 2>/dev/null
  ip netns del "$node" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
set -e

# The node: tap toward the VM, the CNI's veth into the pod netns, the tunnel's node end.
ip netns add "$node"
ip netns add "$pod"
N="ip -n $node"
P="ip -n $pod"
$N link set lo up
$P link set lo up
$N tuntap add tap0 mode tap
$N addr add 192.168.90.1/24 dev tap0
$N link set tap0 up
$N link add cnihost mtu 1450 type veth peer name eth0 mtu 1450 netns "$pod"
$N addr add 10.244.1.1/24 dev cnihost
$N addr add fd00:244::1/64 dev cnihost nodad
$N link set cnihost up
$P addr add 10.244.1.5/24 dev eth0
$P addr add fd00:244::5/64 dev eth0 nodad
$P link set eth0 up
$P route add default via 10.244.1.1
$N link add ppvx555001 type vxlan id 555001 remote 192.168.90.15 local 192.168.90.1 dstport 4789
$N link set ppvx555001 netns "$pod"
$P link set ppvx555001 name vxlan1
$P link set vxlan1 mtu 1450 up
for pair in "eth0 vxlan1" "vxlan1 eth0"; do
  read -r from to <<<"$pair"
  tc -n "$pod" qdisc add dev "$from" ingress
  tc -n "$pod" filter add dev "$from" parent ffff: protocol all u32 match u32 0 0 \
    action mirred egress redirect dev "$to"
done
mac=$($P -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

# The VM's user-data: apf.json with the pod-network and throwaway TLS material.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days 1 -subj /CN=smoke-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
  -subj /CN=podvm 2>/dev/null
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 2>/dev/null
mkdir cd
python3 - "$mac" <<'EOF'
import base64, json, sys
apf = {"pod-network": {"podip": "10.244.1.5/24", "podipv6": "fd00:244::5/64", "pod-hw-addr": sys.argv[1],
                       "interface": "eth0", "worker-node-ip": "192.168.90.1/24", "tunnel-type": "vxlan",
                       "routes": [{"dst": "", "gw": "10.244.1.1", "dev": "eth0"}], "neighbors": [],
                       "mtu": 1450, "index": 0, "vxlan-port": 4789, "vxlan-id": 555001},
       "pod-name": "web-0", "tls-server-key": open("srv.key").read(),
       "tls-server-cert": open("srv.crt").read(), "tls-client-ca": open("ca.crt").read()}
content = base64.b64encode(json.dumps(apf, indent=2).encode()).decode()
open("cd/user-data", "w").write("#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n"
                                "  permissions: \"0600\"\n  encoding: b64\n  content: " + content + "\n")
open("cd/meta-data", "w").write("instance-id: podvm-smoke\nlocal-hostname: podvm-smoke\n")
EOF
xorriso -as mkisofs -quiet -V cidata -R -J -o cidata.iso cd/user-data cd/meta-data 2>/dev/null
qemu-img create -q -f qcow2 -b "$image" -F qcow2 disk.qcow2
cat >udhcpd.conf <<EOF
start 192.168.90.15
end 192.168.90.15
interface tap0
option subnet 255.255.255.0
option router 192.168.90.1
option lease 86400
lease_file $work/udhcpd.leases
pidfile $work/udhcpd.pid
EOF
: >udhcpd.leases
ip netns exec "$node" busybox udhcpd -S udhcpd.conf
ip netns exec "$node" qemu-system-x86_64 -accel tcg -m 512 -smp 1 -display none -monitor none \
  -serial "file:$work/console.log" -pidfile "$work/qemu.pid" -daemonize \
  -drive file=disk.qcow2,if=virtio,format=qcow2 -drive file=cidata.iso,if=virtio,format=raw,readonly=on \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0
set +e

for _ in $(seq 1 150); do
  grep -q "pod network test server\|BOOT STOPPED" console.log 2>/dev/null && break
  sleep 2
done
grep -E "podvm:|pod network" console.log

failed=0
check() {  # check <what> <expected> <command...>
  local what=$1 want=$2 got
  shift 2
  got=$("$@" 2>&1)
  if [[ $got == *"$want"* ]]; then
    echo "ok   $what: $got"
  else
    echo "FAIL $what: got \"$got\", want \"$want\""
    failed=1
  fi
}
in_node() { ip netns exec "$node" timeout 20 "$@"; }
check "node -> pod VM, IPv4" "podvm podvm-smoke pod web-0" in_node busybox wget -q -O - http://10.244.1.5:8080/
check "node -> pod VM, IPv6" "podvm podvm-smoke pod web-0" in_node busybox wget -q -O - "http://[fd00:244::5]:8080/"
in_node sh -c 'printf "hello from the node\n" | busybox nc -l -p 9000' &
in_node sh -c 'printf "hello from the node over IPv6\n" | busybox nc -l -p 9001' &
sleep 0.5
check "pod VM -> node, IPv4" "hello from the node" \
  in_node busybox wget -q -O - "http://10.244.1.5:8080/cgi-bin/reach?10.244.1.1:9000"
check "pod VM -> node, IPv6" "hello from the node over IPv6" \
  in_node busybox wget -q -O - "http://10.244.1.5:8080/cgi-bin/reach?[fd00:244::1]:9001"
exit $failed
