#!/usr/bin/python3
"""Renders every overlay of deploy/kubernetes with `kubectl kustomize` and checks what an install
relies on: the objects and their names, the DaemonSet's mounts, capabilities, probes, host network,
update strategy and grace period, the RuntimeClass, the kata remote configuration, and that every
key of peer-pods-cm and peer-pods-secret is an environment variable the daemon reads, as the built
binary's `cloud-api-adaptor help <provider>` prints them. CAA's own peer-pods-cm keys (tests/deploy/
caa/) must all be accepted too. Each check is first run on a broken copy of a rendered overlay, so a
check that stopped seeing anything fails.

Usage: check_manifests.py --source <repository root> --adaptor <cloud-api-adaptor> [--kubectl kubectl]
"""
import argparse
import copy
import pathlib
import re
import subprocess
import sys
import tomllib

import yaml

NAMESPACE = "confidential-containers-system"
PROVIDERS = ("libvirt", "aws", "azure", "gcp")
HOST_PATHS = {"/run/peerpod": "/run/peerpod", "/run/netns": "/run/netns", "/lib/modules": "/lib/modules"}

# Keys the ConfigMap may carry that `help <provider>` does not list (yet):
# - CLOUD_PROVIDER is read by the DaemonSet (the command's argument), not by the daemon's flags.
# - PROBE_PORT and HEALTH_PORT belong to the health and metrics listeners. Once `help` lists them,
#   drop them from here so the test holds them to the binary.
ALLOWED_BEYOND_HELP = {"CLOUD_PROVIDER", "PROBE_PORT", "HEALTH_PORT"}


def help_env_names(adaptor, provider):
    """The environment names of a provider's flags, and the -shutdown-grace default (seconds)."""
    r = subprocess.run([adaptor, "help", provider], capture_output=True, text=True)
    out = r.stdout + r.stderr
    names = set(re.findall(r"\(Env:([A-Z0-9_]+)\)", out))
    if r.returncode != 0 or not names:
        raise SystemExit(f"FAIL: `{adaptor} help {provider}` gave no env names (exit {r.returncode}):\n{out}")
    grace = re.search(r"--shutdown-grace TEXT=(\d+)s", out)
    socket = re.search(r"--socket TEXT=(\S+)", out)
    return names, int(grace.group(1)) if grace else None, socket.group(1) if socket else None


def render(kubectl, overlay):
    r = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: kubectl kustomize {overlay} failed:\n{r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind_name(docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def data_keys(obj):
    return set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())


def check_overlay(provider, docs, env_names, grace, socket):
    """Problems with one rendered overlay."""
    p = []
    objs = by_kind_name(docs)
    expected = {("Namespace", NAMESPACE), ("ServiceAccount", "cloud-api-adaptor"),
                ("ConfigMap", "peer-pods-cm"), ("Secret", "peer-pods-secret"),
                ("ConfigMap", "kata-remote-config"), ("DaemonSet", "cloud-api-adaptor-daemonset"),
                ("RuntimeClass", "kata-remote")}
    if provider == "libvirt":
        expected.add(("Secret", "ssh-key-secret"))
    for kind, name in sorted(expected - set(objs)):
        p.append(f"missing {kind}/{name}")
    for kind, name in sorted(set(objs) - expected):
        p.append(f"unexpected {kind}/{name}")
    for (kind, name), d in objs.items():
        if kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
            p.append(f"{kind}/{name}: the daemon uses no Kubernetes API and gets no RBAC")
        ns = d["metadata"].get("namespace")
        if kind in ("Namespace", "RuntimeClass"):
            if ns:
                p.append(f"{kind}/{name} is cluster-scoped but has namespace {ns}")
        elif ns != NAMESPACE:
            p.append(f"{kind}/{name} is in namespace {ns!r}, not {NAMESPACE}")
    sa = objs.get(("ServiceAccount", "cloud-api-adaptor"), {})
    if sa.get("automountServiceAccountToken") is not False:
        p.append("ServiceAccount cloud-api-adaptor mounts an API token it has no use for")

    # peer-pods-cm and peer-pods-secret: every key is a variable the daemon reads.
    cm = objs.get(("ConfigMap", "peer-pods-cm"), {})
    if (cm.get("data") or {}).get("CLOUD_PROVIDER") != provider:
        p.append(f"peer-pods-cm CLOUD_PROVIDER is {(cm.get('data') or {}).get('CLOUD_PROVIDER')!r}, not {provider!r}")
    for obj_name, obj in (("peer-pods-cm", cm), ("peer-pods-secret", objs.get(("Secret", "peer-pods-secret"), {}))):
        for key, value in {**(obj.get("data") or {}), **(obj.get("stringData") or {})}.items():
            if not isinstance(value, str):
                p.append(f"{obj_name} {key} is {value!r}, not a string (the API server refuses it)")
        for key in sorted(data_keys(obj)):
            if key not in env_names and key not in ALLOWED_BEYOND_HELP:
                p.append(f"{obj_name} key {key} is not an env name of `cloud-api-adaptor help {provider}`")

    # The DaemonSet.
    ds = objs.get(("DaemonSet", "cloud-api-adaptor-daemonset"))
    if not ds:
        return p
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    if ds["metadata"].get("labels", {}).get("app") != "cloud-api-adaptor" or \
            spec["selector"].get("matchLabels") != {"app": "cloud-api-adaptor"} or \
            spec["template"]["metadata"].get("labels", {}).get("app") != "cloud-api-adaptor":
        p.append("DaemonSet labels/selector are not app: cloud-api-adaptor")
    if pod.get("hostNetwork") is not True:
        p.append("DaemonSet is not hostNetwork")
    if pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        p.append("dnsPolicy is not ClusterFirstWithHostNet")
    if pod.get("nodeSelector") != {"node.kubernetes.io/worker": ""}:
        p.append(f"nodeSelector is {pod.get('nodeSelector')}, not CAA's node.kubernetes.io/worker")
    if pod.get("serviceAccountName") != "cloud-api-adaptor":
        p.append("serviceAccountName is not cloud-api-adaptor")
    if grace is not None and not pod.get("terminationGracePeriodSeconds", 30) > grace:
        p.append(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} is not above -shutdown-grace {grace}s")
    ru = spec.get("updateStrategy", {})
    if ru.get("type") != "RollingUpdate" or ru.get("rollingUpdate") != {"maxUnavailable": 1, "maxSurge": 0}:
        p.append(f"updateStrategy is {ru}, not RollingUpdate maxUnavailable 1 maxSurge 0")
    ann = spec["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "8000" or \
            ann.get("prometheus.io/path") != "/metrics":
        p.append(f"scrape annotations are {ann}")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        p.append(f"{len(containers)} containers, expected 1")
        return p
    c = containers[0]
    cmd = (c.get("command") or []) + (c.get("args") or [])
    if len(cmd) != 2 or pathlib.PurePath(cmd[0]).name != "cloud-api-adaptor" or cmd[1] != "$(CLOUD_PROVIDER)":
        p.append(f"command is {cmd}, not cloud-api-adaptor $(CLOUD_PROVIDER)")
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("CLOUD_PROVIDER", {}).get("valueFrom", {}).get("configMapKeyRef") != \
            {"name": "peer-pods-cm", "key": "CLOUD_PROVIDER"}:
        p.append("CLOUD_PROVIDER (the command's argument) is not declared from peer-pods-cm")
    for name, path in (("NODE_NAME", "spec.nodeName"), ("POD_UID", "metadata.uid")):
        if env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != path:
            p.append(f"{name} is not the downward API's {path}")
    env_from = {(next(iter(k for k in e if k != "prefix")), e[next(iter(k for k in e if k != "prefix"))]["name"])
                for e in c.get("envFrom", [])}
    if env_from != {("configMapRef", "peer-pods-cm"), ("secretRef", "peer-pods-secret")}:
        p.append(f"envFrom is {sorted(env_from)}")

    sc = c.get("securityContext", {})
    if sc.get("privileged"):
        p.append("the container is privileged")
    caps = sc.get("capabilities", {})
    if sorted(caps.get("add", [])) != ["NET_ADMIN", "SYS_ADMIN"]:
        p.append(f"capabilities added are {caps.get('add')}, not exactly NET_ADMIN and SYS_ADMIN")
    if caps.get("drop") != ["ALL"]:
        p.append(f"capabilities dropped are {caps.get('drop')}, not ALL")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path, host in HOST_PATHS.items():
        m = mounts.get(path)
        if not m:
            p.append(f"no mount at {path}")
            continue
        if volumes.get(m["name"], {}).get("hostPath", {}).get("path") != host:
            p.append(f"{path} is not the node's {host}")
    if mounts.get("/run/netns", {}).get("mountPropagation") != "HostToContainer":
        p.append("/run/netns is not mounted with HostToContainer propagation")
    if not mounts.get("/lib/modules", {}).get("readOnly"):
        p.append("/lib/modules is not read-only")
    for path, m in mounts.items():
        if m.get("mountPropagation") == "Bidirectional":
            p.append(f"{path} propagates back to the node (Bidirectional)")
    if provider == "libvirt":
        m = mounts.get("/root/.ssh")
        secret = volumes.get(m["name"], {}).get("secret", {}) if m else {}
        if not m or secret.get("secretName") != "ssh-key-secret" or secret.get("defaultMode") != 0o600 \
                or not m.get("readOnly"):
            p.append("libvirt: ssh-key-secret is not mounted read-only at /root/.ssh with mode 0600")
        ssh = objs.get(("Secret", "ssh-key-secret"), {})
        if data_keys(ssh) != {"id_rsa"}:
            p.append(f"libvirt: ssh-key-secret keys are {sorted(data_keys(ssh))}, not CAA's id_rsa")
        if not (cm.get("data") or {}).get("LIBVIRT_URI", "").startswith("qemu+ssh://"):
            p.append("libvirt: LIBVIRT_URI is not a qemu+ssh:// URI as CAA's")
    elif "/root/.ssh" in mounts:
        p.append(f"{provider}: mounts an SSH key it does not use")

    ports = {pt["containerPort"] for pt in c.get("ports", [])}
    if ports != {8000, 8001}:
        p.append(f"container ports are {sorted(ports)}, not 8000 and 8001")
    sp, rp, lp = c.get("startupProbe", {}), c.get("readinessProbe", {}), c.get("livenessProbe", {})
    if sp.get("httpGet", {}).get("path") != "/startup" or sp.get("httpGet", {}).get("port") != 8000:
        p.append(f"startupProbe is {sp}, not GET /startup on 8000")
    if rp.get("grpc", {}).get("port") != 8001 or set(rp) & {"httpGet", "tcpSocket", "exec"}:
        p.append(f"readinessProbe is {rp}, not gRPC on 8001")
    if rp.get("grpc", {}).get("service", "cloud-api-adaptor") not in ("", "cloud-api-adaptor"):
        p.append(f"readinessProbe asks for service {rp['grpc']['service']!r}")
    if lp.get("httpGet", {}).get("path") != "/livez" or lp.get("httpGet", {}).get("port") != 8000:
        p.append(f"livenessProbe is {lp}, not GET /livez on 8000")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        if set(res.get(kind, {})) != {"cpu", "memory"}:
            p.append(f"resources.{kind} is {res.get(kind)}, expected cpu and memory")

    # The RuntimeClass and the kata configuration.
    rc = objs.get(("RuntimeClass", "kata-remote"), {})
    if rc.get("handler") != "kata-remote":
        p.append(f"RuntimeClass handler is {rc.get('handler')!r}")
    if set(rc.get("overhead", {}).get("podFixed", {})) != {"cpu", "memory"}:
        p.append(f"RuntimeClass overhead is {rc.get('overhead')}")
    kata = objs.get(("ConfigMap", "kata-remote-config"), {}).get("data", {}).get("configuration-remote.toml")
    if not kata:
        p.append("kata-remote-config has no configuration-remote.toml")
    else:
        try:
            t = tomllib.loads(kata)
            remote = t.get("hypervisor", {}).get("remote", {})
            runtime = t.get("runtime", {})
            if remote.get("remote_hypervisor_socket") != socket:
                p.append(f"kata remote_hypervisor_socket {remote.get('remote_hypervisor_socket')!r} is not the daemon's socket {socket!r}")
            if not isinstance(remote.get("remote_hypervisor_timeout"), int) or remote["remote_hypervisor_timeout"] <= 0:
                p.append("kata remote_hypervisor_timeout is not a positive number of seconds")
            for key, want in (("disable_new_netns", True), ("internetworking_model", "none"),
                              ("static_sandbox_resource_mgmt", True)):
                if runtime.get(key) != want:
                    p.append(f"kata runtime.{key} is {runtime.get(key)!r}, not {want!r}")
        except tomllib.TOMLDecodeError as e:
            p.append(f"configuration-remote.toml does not parse: {e}")
    return p


def documented_optional_keys(overlay_dir):
    """Variable names the overlay's peer-pods-cm.yaml mentions in its comments as optional keys."""
    text = (overlay_dir / "peer-pods-cm.yaml").read_text()
    comments = " ".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
    return {w for w in re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", comments)
            if w not in {"REPLACE_ME", "SEV_SNP", "RESOURCE_EXHAUSTED"}}


def self_test(provider, docs, env_names, grace, socket):
    """Breaks a rendered overlay in each way the checks are for; each must be reported."""
    failures = []

    def ds_container(d):
        return next(x for x in d if x["kind"] == "DaemonSet")["spec"]["template"]["spec"]["containers"][0]

    def mutate(fn, expected):
        d = copy.deepcopy(docs)
        fn(d)
        got = check_overlay(provider, d, env_names, grace, socket)
        if not any(expected in x for x in got):
            failures.append(f"self-test ({provider}): breaking it should report {expected!r}, got {got}")

    def add_cm_key(d):
        next(x for x in d if x["metadata"]["name"] == "peer-pods-cm")["data"]["AWS_REGOIN"] = "x"

    def privileged(d):
        ds_container(d)["securityContext"]["privileged"] = True

    def extra_cap(d):
        ds_container(d)["securityContext"]["capabilities"]["add"].append("SYS_PTRACE")

    def no_propagation(d):
        for m in ds_container(d)["volumeMounts"]:
            m.pop("mountPropagation", None)

    def http_readiness(d):
        ds_container(d)["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": 8000}}

    def no_host_network(d):
        next(x for x in d if x["kind"] == "DaemonSet")["spec"]["template"]["spec"]["hostNetwork"] = False

    def rbac(d):
        d.append({"kind": "ClusterRole", "metadata": {"name": "pod-viewer"}})

    def unquoted(d):
        next(x for x in d if x["metadata"]["name"] == "peer-pods-cm")["data"]["PEERPODS_LIMIT_PER_NODE"] = 10

    def handler(d):
        next(x for x in d if x["kind"] == "RuntimeClass")["handler"] = "kata"

    mutate(add_cm_key, "key AWS_REGOIN")
    mutate(privileged, "privileged")
    mutate(extra_cap, "not exactly NET_ADMIN and SYS_ADMIN")
    mutate(no_propagation, "HostToContainer")
    mutate(http_readiness, "not gRPC on 8001")
    mutate(no_host_network, "not hostNetwork")
    mutate(rbac, "gets no RBAC")
    mutate(handler, "handler")
    mutate(unquoted, "not a string")
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, type=pathlib.Path)
    ap.add_argument("--adaptor", required=True)
    ap.add_argument("--kubectl", default="kubectl")
    args = ap.parse_args()
    k8s = args.source / "deploy" / "kubernetes"
    problems = []
    for provider in PROVIDERS:
        env_names, grace, socket = help_env_names(args.adaptor, provider)
        overlay = k8s / "overlays" / provider
        docs = render(args.kubectl, overlay)
        problems += [f"{provider}: {x}" for x in check_overlay(provider, docs, env_names, grace, socket)]
        if provider == "aws":
            problems += self_test(provider, docs, env_names, grace, socket)
        for key in sorted(documented_optional_keys(overlay)):
            if key not in env_names and key not in ALLOWED_BEYOND_HELP:
                problems.append(f"{provider}: peer-pods-cm.yaml documents {key}, which the daemon does not read")
        # CAA's keys for this provider (its chart's values, tests/deploy/caa/) work unchanged.
        caa = args.source / "tests" / "deploy" / "caa" / f"{provider}.yaml"
        caa_docs = [d for d in yaml.safe_load_all(caa.read_text()) if d]
        if not caa_docs:
            problems.append(f"{caa} holds nothing")
        for d in caa_docs:
            for key in sorted(data_keys(d)):
                if key not in env_names and key not in ALLOWED_BEYOND_HELP:
                    problems.append(f"{provider}: CAA's {d['metadata']['name']} key {key} is not read by the daemon")
        print(f"{provider}: {len(docs)} objects rendered, {len(env_names)} env names in help, "
              f"{sum(len(data_keys(d)) for d in caa_docs)} CAA keys checked")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
