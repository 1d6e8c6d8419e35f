#!/usr/bin/env bash
# Installs every Debian (bookworm) package the project needs to build, test and benchmark.
# Idempotent; as root, or through sudo, which it asks for itself. Nothing is downloaded from outside Debian's archive.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  # libraries
  libasio-dev libprotobuf-dev protobuf-compiler libspdlog-dev nlohmann-json3-dev libcli11-dev libssl-dev
  # gRPC (C++ library with its CMake package, and protoc's C++ stub plugin): the daemon's grpc.health.v1 endpoint
  # for kubelet's gRPC probes, and peerpods-health-probe
  libgrpc++-dev protobuf-compiler-grpc
  # the daemon's metrics: prometheus-cpp (its core library: registry, metric types, text exposition)
  prometheus-cpp-dev
  # in-VM tools: user-data YAML, gzip, initdata TOML, cidata ISO reader, IMDS fetch
  libyaml-cpp-dev zlib1g-dev libtomlplusplus-dev libiso9660-dev libcurl4-openssl-dev
  # tests: GoogleTest, the independent Go ttrpc peer, libFuzzer (clang), relay baselines
  libgtest-dev libgmock-dev golang-go golang-github-containerd-ttrpc-dev clang-14 libclang-rt-14-dev
  socat
  # tests: build cidata ISO images
  xorriso
  # cloud provider tests: the loopback fakes (Debian's python3) and the clouds' own code as oracles:
  # botocore's SigV4 signer and EC2 model, the Azure SDK's compute models, PyJWT, cryptography,
  # Google's own auth library (google-auth: service-account tokens, JWT verification)
  python3 python3-cryptography python3-botocore python3-azure python3-jwt python3-google-auth
  # the model loader's stand-in KBS: JWE from an independent implementation (jwcrypto)
  python3-jwcrypto
  # libvirt provider: libvirt client, domain XML (libxml2), cidata ISO writer
  libvirt-dev libxml2-dev libisofs-dev
  # pod network (VXLAN tunnel, addresses, routes, neighbours, tc redirects) over netlink: libnl's core and route
  # libraries, so no code runs `ip` or `tc`
  libnl-3-dev libnl-route-3-dev
  # pod VMs: libvirtd + QEMU (TCG), disk tools, firmware, DHCP for libvirt networks, schema checks
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ovmf dnsmasq-base libxml2-utils iproute2
  # the test pod VM image: kernel, busybox, modules, boot loader on a FAT image
  linux-image-amd64 busybox-static kmod cpio syslinux syslinux-common mtools dosfstools
  # deploy/ tests: the checkers' YAML parser, promtool (alert rules: check and unit tests)
  python3-yaml prometheus
  # the adaptor's container image (deploy/image): umoci makes the OCI layout; ssh and the CA bundle go
  # into it; runc runs it once in its test
  umoci runc openssh-client ca-certificates
  # bench-model: gpg -d, today's common way of decrypting a model, as the baseline
  gnupg
)
# deploy/ tests render the kustomize overlays with kubectl. Debian's is kubernetes-client (kubectl
# 1.20, kustomize v2.0, which the overlays are written for); a newer kubectl already installed is kept.
command -v kubectl >/dev/null || packages+=(kubernetes-client)

if [ "$(id -u)" -ne 0 ]; then
  # A fresh Debian machine used as root has no sudo; a developer's account usually has it.
  command -v sudo >/dev/null || { echo "setup.sh: run as root" >&2; exit 1; }
  exec sudo "$0" "$@"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Only promtool of the prometheus package is used (tests); on a machine booted with systemd, Debian
# starts the server it also installs: stop and disable it again.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || echo "setup.sh: note: could not stop prometheus.service"
fi
