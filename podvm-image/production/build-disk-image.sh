#!/bin/bash
# build-disk-image.sh: the PRODUCTION pod VM disk image. Debian bookworm (debootstrap) with systemd,
# booted by UEFI from a unified kernel image (UKI), root filesystem read-only under dm-verity, and
# the pod VM services: process-user-data, attestation-agent, confidential-data-hub, kata-agent,
# agent-protocol-forwarder, api-server-rest (units in files/etc/systemd/system, order in README.md).
#
# Not built in CI: it needs root (debootstrap, chroot), a Debian mirror, and the kata-agent and
# guest-components binaries, which this project does not build. Run it on a Debian bookworm host
# (the shared libraries of our binaries are mapped to bookworm packages through dpkg).
#
# Outputs in --out: podvm.qcow2 (GPT: ESP with the UKI, root, verity hash tree), podvm.raw,
# podvm.efi (the UKI), vmlinuz, initrd.img and cmdline (for direct kernel boot with measured
# kernel hashes), roothash, and SHA256SUMS with the reference values it prints at the end.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: build-disk-image.sh --kata-agent FILE --attestation-agent FILE --confidential-data-hub FILE
                           --api-server-rest FILE --bin-dir DIR --out DIR
                           [--platform libvirt|aws|azure|gcp] [--mirror URL] [--backports-kernel]
  --bin-dir           holds our agent-protocol-forwarder, process-user-data and peerpods-model-loader
  --platform          where process-user-data finds the user-data (default libvirt: cidata disk)
  --mirror            Debian mirror (default http://deb.debian.org/debian)
  --backports-kernel  kernel from bookworm-backports (TDX guests need Linux >= 6.2)
EOF
}

die() {
  echo "build-disk-image: $*" >&2
  exit 1
}

kata_agent='' attestation_agent='' cdh='' api_server_rest='' bin_dir='' out_dir=''
platform=libvirt mirror=http://deb.debian.org/debian backports=no
while [[ $# -gt 0 ]]; do
  case $1 in
    --kata-agent) kata_agent=$2; shift 2 ;;
    --attestation-agent) attestation_agent=$2; shift 2 ;;
    --confidential-data-hub) cdh=$2; shift 2 ;;
    --api-server-rest) api_server_rest=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --backports-kernel) backports=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done

# --- inputs and tools ------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and chroot need it)"
declare -A inputs=(
  [kata-agent]=$kata_agent [attestation-agent]=$attestation_agent
  [confidential-data-hub]=$cdh [api-server-rest]=$api_server_rest
  [agent-protocol-forwarder]=${bin_dir:+$bin_dir/agent-protocol-forwarder}
  [process-user-data]=${bin_dir:+$bin_dir/process-user-data}
  [peerpods-model-loader]=${bin_dir:+$bin_dir/peerpods-model-loader}
)
for name in "${!inputs[@]}"; do
  [[ -n ${inputs[$name]} ]] || die "no $name given (see --help)"
  [[ -x ${inputs[$name]} ]] || die "${inputs[$name]} ($name) is not an executable file"
done
[[ -n $out_dir ]] || die "no --out given"
case $platform in libvirt | aws | azure | gcp) ;; *) die "--platform $platform: libvirt, aws, azure or gcp" ;; esac

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: install the Debian package $2"
}
need debootstrap debootstrap
need mkfs.ext4 e2fsprogs
need veritysetup cryptsetup-bin
need mkfs.fat dosfstools
need mcopy mtools
need sfdisk fdisk
need objcopy binutils
need qemu-img qemu-utils
need dpkg-query dpkg
need systemctl systemd
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[[ -r $stub ]] || die "$stub missing: install systemd-boot-efi"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/podvm-disk.XXXXXX")
rootfs=$work/rootfs
cleanup() {
  # Unmount whatever the chroot steps mounted (deepest first), then drop the work dir.
  if [[ -d $rootfs ]]; then
    awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Debian packages that ship the shared libraries an input loads (none for static binaries).
lib_packages() {
  local lib pkg
  { ldd "$1" 2>/dev/null || true; } |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
      pkg=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "/usr$lib" 2>/dev/null ||
        dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null) || {
        echo "build-disk-image: no Debian package ships $lib (needed by $1)" >&2
        return 1
      }
      echo "${pkg%%:*}"
    done
}
extra_packages=()
for name in "${!inputs[@]}"; do
  found=$(lib_packages "${inputs[$name]}") || die "cannot map the libraries of ${inputs[$name]} to packages"
  [[ -z $found ]] || mapfile -t -O "${#extra_packages[@]}" extra_packages <<<"$found"
done
packages=systemd,systemd-sysv,systemd-resolved,udev,dbus,iproute2,iptables,kmod,ca-certificates
packages+=,cryptsetup-bin,tpm2-tools,e2fsprogs,initramfs-tools
if [[ ${#extra_packages[@]} -gt 0 ]]; then
  packages+=,$(printf '%s\n' "${extra_packages[@]}" | sort -u | paste -sd,)
fi

# --- root filesystem -------------------------------------------------------------------------
echo "build-disk-image: debootstrap bookworm from $mirror (packages: $packages)"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror"

in_root() { chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"  # no service starts in the chroot
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

# Our files first: the initramfs hook must be in place when the kernel package builds the initrd.
cp -R --preserve=mode "$here/files/." "$rootfs/"  # owned by root, whoever owns the checkout
install -m 0755 "$kata_agent" "$rootfs/usr/local/bin/kata-agent"
install -m 0755 "$attestation_agent" "$rootfs/usr/local/bin/attestation-agent"
install -m 0755 "$cdh" "$rootfs/usr/local/bin/confidential-data-hub"
install -m 0755 "$api_server_rest" "$rootfs/usr/local/bin/api-server-rest"
install -m 0755 "$bin_dir/agent-protocol-forwarder" "$rootfs/usr/local/bin/agent-protocol-forwarder"
install -m 0755 "$bin_dir/process-user-data" "$rootfs/usr/local/bin/process-user-data"
# The confidential model loader (attest/loader.h): no service of its own; a pod's init container
# runs it (deploy/examples/confidential-model), into a memory-backed emptyDir.
install -m 0755 "$bin_dir/peerpods-model-loader" "$rootfs/usr/local/bin/peerpods-model-loader"

# Where process-user-data reads the user-data on this platform (the unit's default is the cidata
# disk of the libvirt provider). "%" is systemd's specifier character, hence "%%".
dropin=$rootfs/etc/systemd/system/process-user-data.service.d
case $platform in
  aws) source_args='-url http://169.254.169.254/latest/user-data' ;;
  azure) source_args='-url "http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text" -header "Metadata: true" -base64' ;;
  gcp) source_args='-url http://169.254.169.254/computeMetadata/v1/instance/attributes/user-data -header "Metadata-Flavor: Google"' ;;
  libvirt) source_args= ;;
esac
if [[ -n $source_args ]]; then
  mkdir -p "$dropin"
  printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/process-user-data provision-files %s -output-dir /run/peerpod\n' \
    "${source_args//%/%%}" >"$dropin/10-$platform.conf"
fi

if [[ $backports == yes ]]; then
  echo "deb $mirror bookworm-backports main" >"$rootfs/etc/apt/sources.list.d/backports.list"
  in_root apt-get update
  in_root apt-get install -y --no-install-recommends -t bookworm-backports linux-image-amd64
else
  in_root apt-get install -y --no-install-recommends linux-image-amd64
fi
kver=$(basename "$(find "$rootfs/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -1)")
in_root update-initramfs -u -k "$kver"

systemctl --root="$rootfs" enable systemd-networkd.service systemd-resolved.service \
  process-user-data.service attestation-agent.service confidential-data-hub.service \
  kata-agent.service agent-protocol-forwarder.service api-server-rest.service
# No logins at all (no getty, locked root), no first-boot prompts on the console.
for unit in getty@.service serial-getty@.service console-getty.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
in_root passwd -l root
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
echo podvm >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"  # systemd makes a transient one per boot on the read-only root
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs/usr/sbin/policy-rc.d"

cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img"
in_root apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/* "$rootfs"/var/log/* "$rootfs"/tmp/*
cleanup_mounts() { awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r umount; }
cleanup_mounts

# --- root filesystem image and its dm-verity hash tree ---------------------------------------
root_mib=$(($(du -sm --apparent-size "$rootfs" | cut -f1) * 13 / 10 + 256))
root_mib=$(((root_mib + 63) / 64 * 64))
mkfs.ext4 -q -L podvm-root -d "$rootfs" -E root_owner=0:0 "$work/root.img" "${root_mib}M"
veritysetup format "$work/root.img" "$work/verity.img" | tee "$work/verity.txt"
roothash=$(awk '/^Root hash:/ { print $3 }' "$work/verity.txt")
[[ $roothash =~ ^[0-9a-f]{64}$ ]] || die "veritysetup printed no root hash"
echo "$roothash" >"$work/roothash"

# --- UKI: stub + os-release + command line + initrd + kernel, one measured PE image ------------
echo "root=/dev/mapper/podvm-root ro rootfstype=ext4 podvm.verity.roothash=$roothash console=tty0 console=ttyS0,115200 panic=5 quiet" \
  >"$work/cmdline"
section_args=()
align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
end=0
while read -r size vma; do
  ((16#$vma + 16#$size > end)) && end=$((16#$vma + 16#$size))
done < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ { print $3, $4 }')
add_section() {  # <name> <file>: placed at the next aligned address after the previous one
  end=$(((end + align - 1) / align * align))
  section_args+=(--add-section "$1=$2" --change-section-vma "$1=$(printf '0x%x' "$end")")
  end=$((end + $(stat -c %s "$2")))
}
add_section .osrel "$rootfs/usr/lib/os-release"
add_section .cmdline "$work/cmdline"
add_section .initrd "$work/initrd.img"
add_section .linux "$work/vmlinuz"  # last: the kernel may grow into the space after it
objcopy "${section_args[@]}" "$stub" "$work/podvm.efi"

# --- disk: GPT with ESP (UKI as the removable-media boot path), root, verity -----------------
esp_mib=$((($(stat -c %s "$work/podvm.efi") / 1048576 + 64 + 63) / 64 * 64))
truncate -s "${esp_mib}M" "$work/esp.img"
mkfs.fat -F 32 -n PODVM-ESP "$work/esp.img" >/dev/null
MTOOLS_SKIP_CHECK=1 mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
MTOOLS_SKIP_CHECK=1 mcopy -i "$work/esp.img" "$work/podvm.efi" ::/EFI/BOOT/BOOTX64.EFI

verity_mib=$((($(stat -c %s "$work/verity.img") + 1048575) / 1048576))
esp_start=2048 # sectors of 512 bytes; partitions are whole MiB, aligned
root_start=$((esp_start + esp_mib * 2048))
verity_start=$((root_start + root_mib * 2048))
disk_mib=$((1 + esp_mib + root_mib + verity_mib + 1))
truncate -s "${disk_mib}M" "$work/podvm.raw"
sfdisk --quiet "$work/podvm.raw" <<EOF
label: gpt
start=$esp_start, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
start=$root_start, size=$((root_mib * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="podvm-root"
start=$verity_start, size=$((verity_mib * 2048)), type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, name="podvm-root-verity"
EOF
dd if="$work/esp.img" of="$work/podvm.raw" bs=512 seek=$esp_start conv=notrunc,sparse status=none
dd if="$work/root.img" of="$work/podvm.raw" bs=512 seek=$root_start conv=notrunc,sparse status=none
dd if="$work/verity.img" of="$work/podvm.raw" bs=512 seek=$verity_start conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$work/podvm.raw" "$work/podvm.qcow2"

# --- outputs and reference values ------------------------------------------------------------
outputs=(podvm.qcow2 podvm.raw podvm.efi vmlinuz initrd.img cmdline roothash)
(cd "$work" && sha256sum "${outputs[@]}" >SHA256SUMS)
for f in "${outputs[@]}" SHA256SUMS; do mv -f "$work/$f" "$out_dir/$f"; done
echo "build-disk-image: kernel $kver, platform $platform, dm-verity root hash $roothash"
echo "build-disk-image: sha256 reference values (also in $out_dir/SHA256SUMS):"
sed 's/^/  /' "$out_dir/SHA256SUMS"
