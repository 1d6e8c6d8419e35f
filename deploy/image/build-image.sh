#!/bin/bash
# build-image.sh <bin-dir> <out-dir>: the adaptor's container image, as an OCI image layout, built
# offline from this host's files only: no package download, no base image, no registry.
#
#   <bin-dir>  holds cloud-api-adaptor and peerpodctl (the build's bin/)
#   <out-dir>  receives oci/ (an OCI image layout, tag cloud-api-adaptor:<version>) and
#              cloud-api-adaptor.digest (the manifest's digest, also printed)
#
# The image's one layer holds: cloud-api-adaptor and peerpodctl in /usr/local/bin (stripped), ssh
# (Debian's openssh-client: libvirt runs it for qemu+ssh:// URIs), every shared library and the
# loader `ldd` lists for the three, the host's CA bundle (/etc/ssl/certs/ca-certificates.crt, which
# libcurl and OpenSSL read: the cloud providers' APIs are verified against it), and /etc/passwd,
# group, nsswitch.conf, hosts. No shell, no package manager. The image runs as root: the daemon
# needs NET_ADMIN and SYS_ADMIN in the node's network namespace (deploy/kubernetes/base/daemonset.yaml).
#
# The image is made with umoci (Debian package umoci; https://github.com/opencontainers/umoci):
# init, new, insert (the root filesystem as one layer), config, gc. Push it with skopeo, e.g.
#   skopeo copy oci:<out-dir>/oci:cloud-api-adaptor:<version> docker://<registry>/cloud-api-adaptor:<version>
#
# Environment: SOURCE_DATE_EPOCH (every file time in the layer, the config's and the history's
# "created"; default 1980-01-01) so that the same binaries and host files give the same layer,
# config and manifest digests; IMAGE_VERSION (default: what `cloud-api-adaptor version` prints);
# IMAGE_SOURCE (the org.opencontainers.image.source label; default: this checkout's git remote
# "origin", left out when there is none). Outputs are replaced only when the whole build succeeded.
set -euo pipefail

die() {
  echo "build-image: $*" >&2
  exit 1
}

[[ $# -eq 2 ]] || die "usage: $0 <bin-dir> <out-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../cmake/rootfs.sh
source "$here/../../cmake/rootfs.sh"
bin_dir=$(cd "$1" 2>/dev/null && pwd) || die "bin-dir $1 does not exist"
mkdir -p "$2"
out_dir=$(cd "$2" && pwd)

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: install the Debian package $2"
}
need umoci umoci
need ldd libc-bin
need ssh openssh-client
need python3 python3
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca_bundle ]] || die "$ca_bundle missing: install the Debian package ca-certificates"

for b in cloud-api-adaptor peerpodctl; do
  [[ -x $bin_dir/$b ]] || die "$bin_dir/$b missing: build the targets cloud-api-adaptor peerpodctl"
done
version=${IMAGE_VERSION:-$("$bin_dir/cloud-api-adaptor" version | awk '{ print $2 }')}
[[ $version =~ ^[A-Za-z0-9._+-]+$ ]] || die "unusable version '$version' (set IMAGE_VERSION)"
tag=cloud-api-adaptor:$version
source_url=${IMAGE_SOURCE:-$(git -C "$here" remote get-url origin 2>/dev/null || true)}
revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || true)

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
export TZ=UTC LC_ALL=C
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
umask 022

work=$(mktemp -d "${TMPDIR:-/tmp}/adaptor-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# --- root filesystem -------------------------------------------------------------------------
echo "build-image: $tag from $bin_dir"
mkdir -p "$root"/{etc/ssl/certs,usr/lib/ssl,proc,sys,dev,run,tmp,var,root/.ssh}
# /var/run is /run, as on Debian (FHS 3.0 section 5.13): the kata shim names pod netns
# /var/run/netns/cni-..., which the DaemonSet's /run/netns mount serves.
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root" "$root/root/.ssh"
for b in cloud-api-adaptor peerpodctl; do
  pp_install_with_libs "$root" "$bin_dir/$b" "/usr/local/bin/$b" || die "cannot install $b"
  if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$root/usr/local/bin/$b"; fi
done
ssh_bin=$(command -v ssh)
pp_install_with_libs "$root" "$ssh_bin" /usr/bin/ssh || die "cannot install $ssh_bin"

# libcurl (Debian's: --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt) reads the bundle at that
# path; OpenSSL's default paths (OPENSSLDIR /usr/lib/ssl) point there too, as on Debian.
cp "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"

# ssh looks the user up (home directory for ~/.ssh: the libvirt overlay mounts the key at
# /root/.ssh/id_rsa). glibc's files and dns NSS modules are built into libc.so.6 (glibc >= 2.34).
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- OCI image -------------------------------------------------------------------------------
oci=$work/oci
rootless=()
[[ $(id -u) -eq 0 ]] || rootless=(--rootless) # files owned by the caller become root's in the layer
umoci init --layout "$oci"
umoci new --image "$oci:$tag"
umoci insert "${rootless[@]}" --image "$oci:$tag" --history.created "$created" \
  --history.created_by "deploy/image/build-image.sh" \
  --history.comment "cloud-api-adaptor, peerpodctl, ssh, their libraries, CA bundle" "$root" /
labels=(--config.label "org.opencontainers.image.title=cloud-api-adaptor"
  --config.label "org.opencontainers.image.version=$version"
  --config.label "org.opencontainers.image.created=$created")
[[ -z $source_url ]] || labels+=(--config.label "org.opencontainers.image.source=$source_url")
[[ -z $revision ]] || labels+=(--config.label "org.opencontainers.image.revision=$revision")
umoci config --image "$oci:$tag" --no-history --created "$created" --os linux --architecture amd64 \
  --config.entrypoint /usr/local/bin/cloud-api-adaptor \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.user 0:0 --config.workingdir / --config.stopsignal SIGTERM "${labels[@]}"
umoci gc --layout "$oci"

digest=$(python3 - "$oci/index.json" "$tag" <<'EOF'
import json, sys
index = json.load(open(sys.argv[1]))
print(*[m["digest"] for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]])
EOF
)
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "no single manifest tagged $tag in $oci/index.json"
echo "$digest" >"$work/cloud-api-adaptor.digest"

# --- outputs ---------------------------------------------------------------------------------
rm -rf "$out_dir/oci.old"
[[ ! -e $out_dir/oci ]] || mv "$out_dir/oci" "$out_dir/oci.old"
mv "$oci" "$out_dir/oci"
rm -rf "$out_dir/oci.old"
mv -f "$work/cloud-api-adaptor.digest" "$out_dir/cloud-api-adaptor.digest"

echo "build-image: $out_dir/oci:$tag, $(du -sk "$out_dir/oci/blobs" | cut -f1) KiB of blobs" \
  "($(du -sk "$root" | cut -f1) KiB unpacked)"
echo "build-image: digest $digest"
