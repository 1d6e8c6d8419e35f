#!/bin/bash
# build-test-image.sh <bin-dir> <out-dir>: builds the TEST pod VM image from the host's Debian
# packages and our binaries, without root-only tools (no mount, losetup, chroot).
#
#   <bin-dir>  holds agent-protocol-forwarder, process-user-data, podvm-test-agent and
#              peerpods-model-loader (run by the test agent's TEST-ONLY ExecProcess, as a pod's init
#              container would run it: it decrypts a model into the VM's memory-backed /run)
#   <out-dir>  receives podvm-test.qcow2 (the base volume: boots with plain SeaBIOS from a virtio
#              disk), vmlinuz, initrd.img and SHA256SUMS (the measurement reference values)
#
# The initramfs is busybox-static, the Debian kernel's virtio modules, our four binaries with
# every shared library they load (found with ldd, kept at the same paths) and initramfs/init. The
# disk is an unpartitioned FAT filesystem ("superfloppy") with syslinux, the kernel and the initrd.
#
# Environment: KERNEL_VERSION (default: the newest /boot/vmlinuz-* with modules under /lib/modules),
# SOURCE_DATE_EPOCH (file times inside the images; default 1980-01-01, the FAT epoch) so that the
# same inputs give the same initrd and disk bytes, hence the same reference values.
# Idempotent: outputs are replaced only when the whole build succeeded.
set -euo pipefail

die() {
  echo "build-test-image: $*" >&2
  exit 1
}

[[ $# -eq 2 ]] || die "usage: $0 <bin-dir> <out-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cmake/rootfs.sh
source "$here/../cmake/rootfs.sh"
bin_dir=$(cd "$1" 2>/dev/null && pwd) || die "bin-dir $1 does not exist"
mkdir -p "$2"
out_dir=$(cd "$2" && pwd)

# --- inputs and tools ------------------------------------------------------------------------
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: install the Debian package $2"
}
need busybox busybox-static
need modprobe kmod
need cpio cpio
need gzip gzip
need mkfs.fat dosfstools
need mcopy mtools
need syslinux syslinux
need qemu-img qemu-utils
need ldd libc-bin
need sha256sum coreutils
[[ -d /usr/lib/syslinux/modules/bios ]] || die "/usr/lib/syslinux/modules/bios missing: install syslinux-common"

busybox_bin=$(command -v busybox)
if ldd "$busybox_bin" >/dev/null 2>&1; then
  die "$busybox_bin is dynamically linked: install busybox-static (it replaces busybox)"
fi

binaries=(agent-protocol-forwarder process-user-data podvm-test-agent peerpods-model-loader)
for b in "${binaries[@]}"; do
  [[ -x $bin_dir/$b ]] || die "$bin_dir/$b missing: build the targets ${binaries[*]}"
done

if [[ -z ${KERNEL_VERSION:-} ]]; then
  for k in $(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V); do
    if [[ -d /lib/modules/$k ]]; then KERNEL_VERSION=$k; fi
  done
fi
[[ -n ${KERNEL_VERSION:-} ]] || die "no /boot/vmlinuz-<version> with /lib/modules/<version>: install linux-image-amd64"
kver=$KERNEL_VERSION
kernel=/boot/vmlinuz-$kver
[[ -r $kernel ]] || die "$kernel is not readable (run as root, or give KERNEL_VERSION)"
[[ -d /lib/modules/$kver ]] || die "/lib/modules/$kver missing: install linux-image-$kver"

# The forwarder makes the pod's network namespace (/run/netns/podns) and a VXLAN device: a kernel
# without network namespaces or VXLAN cannot carry a pod network.
kconfig=/boot/config-$kver
[[ -r $kconfig ]] || die "$kconfig missing: cannot check the kernel for CONFIG_NET_NS and CONFIG_VXLAN"
grep -qx 'CONFIG_NET_NS=y' "$kconfig" || die "kernel $kver lacks CONFIG_NET_NS=y (network namespaces)"
grep -Eqx 'CONFIG_VXLAN=[ym]' "$kconfig" || die "kernel $kver lacks CONFIG_VXLAN"

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
export TZ=UTC MTOOLS_SKIP_CHECK=1 LC_ALL=C

work=$(mktemp -d "${TMPDIR:-/tmp}/podvm-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/initramfs

# --- initramfs -------------------------------------------------------------------------------
echo "build-test-image: kernel $kver, binaries from $bin_dir"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/udhcpc,etc/podvm,proc,sys,dev,run,tmp,root}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

cp "$busybox_bin" "$root/bin/busybox"
busybox --list-full | while read -r applet; do
  [[ $applet == */* && $applet != bin/busybox ]] || continue
  ln -sf /bin/busybox "$root/$applet"
done

# Modules in load order (dependencies first, each once): virtio_ring, virtio, virtio_pci_modern_dev,
# virtio_pci_legacy_dev, virtio_pci, failover, net_failover, virtio_net, then virtio_blk and
# virtio-rng (entropy, when the VM has the device), then the pod network's VM end: udp_tunnel,
# ip6_udp_tunnel, vxlan (the pod's VXLAN endpoint, RFC 7348; the tc ingress/u32/mirred redirect is
# the node's end only, the VM needs none of it), then cdrom and isofs (init reads the instance name
# from the cidata disk's meta-data for the pod-network test server). Compressed modules are stored
# decompressed: busybox insmod loads plain .ko files.
declare -A seen=()
: >"$root/etc/podvm/modules"
for module in virtio_pci virtio_net virtio_blk virtio_rng vxlan isofs; do
  deps=$(modprobe -S "$kver" --show-depends "$module") || die "modprobe cannot resolve $module for $kver"
  while read -r verb path _; do
    [[ $verb == insmod ]] || continue
    [[ -z ${seen[$path]:-} ]] || continue
    seen[$path]=1
    target=$root${path%.xz}
    target=${target%.zst}
    target=${target%.gz}
    mkdir -p "$(dirname "$target")"
    case $path in
      *.ko) cp "$path" "$target" ;;
      *.ko.xz) xz -dc "$path" >"$target" ;;
      *.ko.zst) zstd -qdc "$path" >"$target" ;;
      *.ko.gz) gzip -dc "$path" >"$target" ;;
      *) die "unexpected module file $path" ;;
    esac
    echo "${target#"$root"}" >>"$root/etc/podvm/modules"
  done <<<"$deps"
done

# Our binaries (stripped when strip is available) and the shared libraries and loader they need.
for b in "${binaries[@]}"; do
  pp_install_with_libs "$root" "$bin_dir/$b" "/usr/local/bin/$b" || die "cannot install $b"
  if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$root/usr/local/bin/$b"; fi
done

install -m 0755 "$here/initramfs/init" "$root/init"
install -m 0755 "$here/initramfs/udhcpc.script" "$root/etc/udhcpc/default.script"
# TEST ONLY: the pod-network test server's CGI (init starts the server when apf.json has a
# pod-network).
mkdir -p "$root/srv/podnet/cgi-bin"
install -m 0755 "$here/initramfs/reach.cgi" "$root/srv/podnet/cgi-bin/reach"
install -m 0755 "$here/initramfs/size.cgi" "$root/srv/podnet/cgi-bin/size"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
printf '127.0.0.1 localhost\n127.0.1.1 podvm\n::1 localhost\n' >"$root/etc/hosts"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
: >"$root/etc/resolv.conf"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -print0 | sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | gzip -9n >"$work/initrd.img"

# --- boot disk: FAT superfloppy with syslinux ------------------------------------------------
cp "$kernel" "$work/vmlinuz"
cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT podvm
PROMPT 0
TIMEOUT 0
LABEL podvm
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0,115200 quiet loglevel=3
EOF
touch -d "@$SOURCE_DATE_EPOCH" "$work/vmlinuz" "$work/initrd.img" "$work/syslinux.cfg"

payload_mib=$(($(du -cm "$work/vmlinuz" "$work/initrd.img" | tail -1 | cut -f1) + 8))
disk_mib=64
while ((disk_mib < payload_mib)); do disk_mib=$((disk_mib * 2)); done
truncate -s "${disk_mib}M" "$work/disk.img"
mkfs.fat -F 16 -n PODVM -i 0x50d0cafe --invariant "$work/disk.img" >/dev/null
mcopy -m -i "$work/disk.img" "$work/vmlinuz" "$work/initrd.img" "$work/syslinux.cfg" ::/
syslinux --install "$work/disk.img"
qemu-img convert -f raw -O qcow2 "$work/disk.img" "$work/podvm-test.qcow2"

# --- outputs and reference values ------------------------------------------------------------
(cd "$work" && sha256sum podvm-test.qcow2 vmlinuz initrd.img >SHA256SUMS)
# Each output replaced atomically; touched so build tools see them newer than their inputs.
for f in podvm-test.qcow2 vmlinuz initrd.img SHA256SUMS; do
  mv -f "$work/$f" "$out_dir/$f.tmp"
  touch "$out_dir/$f.tmp"
  mv -f "$out_dir/$f.tmp" "$out_dir/$f"
done

echo "build-test-image: $out_dir/podvm-test.qcow2 (${disk_mib} MiB virtual, $(du -k "$out_dir/podvm-test.qcow2" | cut -f1) KiB file)," \
  "initrd $(du -k "$out_dir/initrd.img" | cut -f1) KiB, kernel $kver"
echo "build-test-image: sha256 reference values (also in $out_dir/SHA256SUMS):"
sed 's/^/  /' "$out_dir/SHA256SUMS"
