#!/bin/bash
# image_runs.sh <source-dir> <bin-dir>: builds the adaptor's image with deploy/image/build-image.sh,
# checks its config and that deploy/kubernetes names its tag, unpacks it into an OCI runtime bundle
# with umoci and runs it with runc (crun when RUNTIME=crun):
#   1. `cloud-api-adaptor version` prints the version the image is tagged with, exit 0;
#   2. `cloud-api-adaptor help libvirt` lists the libvirt flags (-uri);
#   3. `ssh -V` runs (libvirt's qemu+ssh:// transport execs it; its libraries came along);
#   4. the daemon, `cloud-api-adaptor libvirt -uri qemu:///nonexistent`, with the bundle's /run/peerpod
#      bind-mounted from a temp dir: its hypervisor.sock appears there, the image's own peerpodctl
#      (runc exec) gets an answer to hypervisor.Hypervisor/Version through it (`peerpodctl list`
#      warns when none comes), and SIGTERM makes it exit 0.
# The container has its own network namespace (runc's default; nothing listens outside it): the
# DaemonSet's hostNetwork is not needed to show the image runs. It is given the DaemonSet's
# capabilities (NET_ADMIN, SYS_ADMIN) on top of runc's defaults. Everything (container, runtime
# state, bundle, image) is removed on every path. Root only: the runtime makes namespaces and
# cgroups, and the rootfs files are root's.
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
[[ $# -eq 2 ]] || fail "usage: $0 <source-dir> <bin-dir>"
src=$1 bin=$2
runtime=${RUNTIME:-runc}
[[ $(id -u) -eq 0 ]] || fail "must run as root: $runtime makes the container's namespaces and cgroups"
command -v "$runtime" >/dev/null || fail "$runtime not found: install the Debian package $runtime (setup.sh)"
command -v umoci >/dev/null || fail "umoci not found: install the Debian package umoci (setup.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/image-runs.XXXXXX")
state=$tmp/state
id=pp-image-test-$$
daemon_pid=
cleanup() {
  if [[ -d $state ]]; then
    "$runtime" --root "$state" kill "$id" KILL >/dev/null 2>&1 || true
    "$runtime" --root "$state" delete -f "$id" >/dev/null 2>&1 || true
  fi
  [[ -z $daemon_pid ]] || wait "$daemon_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT # so that the EXIT trap cleans up on a signal too

# --- build and inspect -----------------------------------------------------------------------
IMAGE_SOURCE=https://example.invalid/peerpods "$src/deploy/image/build-image.sh" "$bin" "$tmp/out" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "build-image.sh failed"; }
cat "$tmp/build.log"
version=$("$bin/cloud-api-adaptor" version | awk '{ print $2 }')
tag=cloud-api-adaptor:$version
digest=$(cat "$tmp/out/cloud-api-adaptor.digest")

# deploy/kubernetes names the tag the recipe makes: the base's image and every overlay's newTag.
grep -q "^        image: $tag\$" "$src/deploy/kubernetes/base/daemonset.yaml" ||
  fail "deploy/kubernetes/base/daemonset.yaml does not name image $tag"
for k in "$src"/deploy/kubernetes/overlays/*/kustomization.yaml; do
  grep -q "^  newTag: \"$version\"\$" "$k" || fail "$k: newTag is not \"$version\""
done

# The manifest and config, read from the layout's blobs (OCI image-spec: image-layout.md, config.md).
python3 - "$tmp/out/oci" "$tag" "$digest" "$version" <<'EOF' || fail "image config"
import json, os, sys
oci, tag, digest, version = sys.argv[1:]
def blob(d):
    return json.load(open(os.path.join(oci, "blobs", *d.split(":"))))
index = json.load(open(os.path.join(oci, "index.json")))
refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
assert refs == {tag: digest}, f"index tags {refs}, want {tag} -> {digest}"
manifest = blob(digest)
assert len(manifest["layers"]) == 1, f"{len(manifest['layers'])} layers, want 1"
config = blob(manifest["config"]["digest"])
c = config["config"]
want = {
    "Entrypoint": ["/usr/local/bin/cloud-api-adaptor"],
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
    "User": "0:0",
    "WorkingDir": "/",
}
for k, v in want.items():
    assert c.get(k) == v, f"config {k} = {c.get(k)!r}, want {v!r}"
labels = c.get("Labels", {})
for k, v in {"org.opencontainers.image.title": "cloud-api-adaptor",
             "org.opencontainers.image.version": version,
             "org.opencontainers.image.source": "https://example.invalid/peerpods"}.items():
    assert labels.get(k) == v, f"label {k} = {labels.get(k)!r}, want {v!r}"
assert config["os"] == "linux" and config["architecture"] == "amd64", (config["os"], config["architecture"])
print(f"image config ok: {tag} {digest}, layer {manifest['layers'][0]['size']} bytes")
EOF

# --- bundle ----------------------------------------------------------------------------------
umoci unpack --image "$tmp/out/oci:$tag" "$tmp/bundle" >/dev/null
mkdir -p "$tmp/run-peerpod" "$state"
# set_args ARGS...: the bundle's process.args (runc reads config.json at each `run`); no terminal, so
# that the output reaches this script; the DaemonSet's capabilities; /run/peerpod bind-mounted.
set_args() {
  python3 - "$tmp/bundle/config.json" "$tmp/run-peerpod" "$@" <<'EOF'
import json, sys
path, run_peerpod, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(path))
p = c["process"]
p["terminal"] = False
p["args"] = args
for s in ("bounding", "effective", "permitted"):
    p["capabilities"][s] = sorted(set(p["capabilities"][s]) | {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"})
if not any(m["destination"] == "/run/peerpod" for m in c["mounts"]):
    c["mounts"].append({"destination": "/run/peerpod", "type": "bind", "source": run_peerpod,
                        "options": ["rbind", "rw"]})
json.dump(c, open(path, "w"), indent=1)
EOF
}
# run ARGS...: one container run of ARGS, its stdout+stderr in $out; fails with it on a non-zero exit.
run() {
  set_args "$@"
  local rc=0
  out=$(timeout 30 "$runtime" --root "$state" run --bundle "$tmp/bundle" "$id" 2>&1) || rc=$?
  "$runtime" --root "$state" delete -f "$id" >/dev/null 2>&1 || true
  echo "\$ $runtime run: $* -> exit $rc"
  head -n 8 <<<"$out" | sed 's/^/  /'
  (($(wc -l <<<"$out") <= 8)) || echo "  ... ($(wc -l <<<"$out") lines)"
  [[ $rc -eq 0 ]] || fail "$* exited $rc in the container"
}

# --- 1-3: one-shot commands ------------------------------------------------------------------
run cloud-api-adaptor version
[[ $out == "cloud-api-adaptor $version" ]] || fail "version printed '$out', want 'cloud-api-adaptor $version'"
run cloud-api-adaptor help libvirt
grep -q -- '--uri' <<<"$out" || fail "help libvirt does not list --uri"
run ssh -V
grep -q '^OpenSSH_' <<<"$out" || fail "ssh -V printed no OpenSSH version"

# --- 4: the daemon ---------------------------------------------------------------------------
set_args cloud-api-adaptor libvirt -uri qemu:///nonexistent -socket /run/peerpod/hypervisor.sock \
  -pods-dir /run/peerpod/pods -tls-dir /run/peerpod/tls
"$runtime" --root "$state" run --bundle "$tmp/bundle" "$id" >"$tmp/daemon.log" 2>&1 </dev/null &
daemon_pid=$!
for _ in $(seq 100); do
  [[ -S $tmp/run-peerpod/hypervisor.sock ]] && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -S $tmp/run-peerpod/hypervisor.sock ]] || { cat "$tmp/daemon.log" >&2; fail "no hypervisor.sock in the bind-mounted /run/peerpod"; }
echo "\$ $runtime run: cloud-api-adaptor libvirt ... -> hypervisor.sock in $tmp/run-peerpod"

rc=0
out=$(timeout 20 "$runtime" --root "$state" exec "$id" peerpodctl list 2>&1) || rc=$?
echo "\$ $runtime exec: peerpodctl list -> exit $rc"
sed 's/^/  /' <<<"$out"
[[ $rc -eq 0 ]] || fail "peerpodctl list exited $rc"
# peerpodctl list calls hypervisor.Hypervisor/Version first and warns when no adaptor answers.
! grep -q 'no adaptor answers' <<<"$out" || fail "the daemon did not answer Version"
grep -q '^SANDBOX' <<<"$out" || fail "peerpodctl list printed no table"

"$runtime" --root "$state" kill "$id" TERM
rc=0
timeout 30 tail --pid="$daemon_pid" -f /dev/null || fail "the daemon did not stop within 30s of SIGTERM"
wait "$daemon_pid" || rc=$?
daemon_pid=
echo "\$ $runtime kill TERM -> exit $rc"
sed 's/^/  /' "$tmp/daemon.log"
[[ $rc -eq 0 ]] || fail "the daemon exited $rc after SIGTERM"
grep -q 'stopped' "$tmp/daemon.log" || fail "the daemon's log does not say it stopped"
echo "PASS: $tag ($digest) runs under $runtime"
