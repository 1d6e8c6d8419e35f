#!/usr/bin/python3
"""Renders deploy/examples/confidential-model with `kubectl kustomize` and checks what its README
promises: a kata-remote pod whose cc_init_data annotation is initdata.b64, itself base64(gzip(
initdata.toml)) with a model-loader.toml naming a kbs:/// key resource; an init container running
peerpods-model-loader with --initdata from the same bytes (a ConfigMap), --model and an --output
inside a memory-backed emptyDir; the serving container mounting that volume read-only, and nothing
else writing to it. Each check is first run on a broken copy of the rendered objects, so a check
that stopped seeing anything fails.

Usage: check_model_example.py --source <repository root> [--kubectl kubectl]
"""
import argparse
import base64
import copy
import gzip
import pathlib
import subprocess
import sys
import tomllib

import yaml

ANNOTATION = "io.katacontainers.config.hypervisor.cc_init_data"
LOADER = "peerpods-model-loader"


def flags(container):
    """The --name=value flags of a container's args, and its command + args as one list."""
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    out = {}
    for i, a in enumerate(argv):
        if a.startswith("--") and "=" in a:
            k, _, v = a.partition("=")
            out[k] = v
        elif a.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[a] = argv[i + 1]
    return out, argv


def check(docs, example_dir):
    """Problems with the rendered objects (an empty list when all is well)."""
    problems = []
    kinds = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap" else d["metadata"]["name"]): d
             for d in docs}
    dep = kinds.get(("Deployment", "model-server"))
    cm = kinds.get(("ConfigMap", "model-server-initdata"))
    if dep is None or cm is None:
        return [f"expected Deployment model-server and ConfigMap model-server-initdata-<hash>, got {sorted(kinds)}"]
    b64 = (example_dir / "initdata.b64").read_text().strip()
    try:
        toml = gzip.decompress(base64.b64decode(b64, validate=True)).decode()
    except Exception as e:  # noqa: BLE001 - any decoding failure is the finding
        return [f"initdata.b64 is not base64(gzip(TOML)): {e}"]
    if toml != (example_dir / "initdata.toml").read_text():
        problems.append("initdata.b64 is not initdata.toml (regenerate: gzip -9nc initdata.toml | base64 -w0)")
    init = tomllib.loads(toml)
    loader_conf = tomllib.loads(init.get("data", {}).get("model-loader.toml", ""))
    if init.get("algorithm") not in ("sha256", "sha384", "sha512") or "aa.toml" not in init.get("data", {}):
        problems.append("initdata lacks an algorithm or aa.toml")
    if not str(loader_conf.get("key-resource", "")).startswith("kbs:///"):
        problems.append("model-loader.toml has no kbs:/// key-resource")

    tmpl = dep["spec"]["template"]
    spec = tmpl["spec"]
    if spec.get("runtimeClassName") != "kata-remote":
        problems.append(f"runtimeClassName is {spec.get('runtimeClassName')!r}, not kata-remote")
    if (tmpl["metadata"].get("annotations") or {}).get(ANNOTATION) != b64:
        problems.append(f"the pod's {ANNOTATION} annotation is not initdata.b64")
    if cm.get("data", {}).get("initdata") != b64:
        problems.append("the ConfigMap's initdata is not initdata.b64")

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    memory = {n for n, v in volumes.items() if (v.get("emptyDir") or {}).get("medium") == "Memory"}
    cm_volumes = {n for n, v in volumes.items() if (v.get("configMap") or {}).get("name") == cm["metadata"]["name"]}
    loaders = [c for c in spec.get("initContainers", []) if any(LOADER in a for a in flags(c)[1])]
    if len(loaders) != 1:
        return problems + [f"expected one init container running {LOADER}, found {len(loaders)}"]
    loader = loaders[0]
    f, _ = flags(loader)
    mounts = {m["mountPath"]: m for m in loader.get("volumeMounts", [])}
    out = f.get("--output", "")
    out_mount = [m for p, m in mounts.items() if out.startswith(p.rstrip("/") + "/")]
    if not out_mount or out_mount[0]["name"] not in memory or out_mount[0].get("readOnly"):
        problems.append(f"the loader's --output {out!r} is not in a writable emptyDir with medium: Memory")
    init_path = f.get("--initdata", "")
    init_mount = [m for p, m in mounts.items() if init_path.startswith(p.rstrip("/") + "/")]
    if not init_mount or init_mount[0]["name"] not in cm_volumes:
        problems.append(f"the loader's --initdata {init_path!r} is not from the initdata ConfigMap")
    if not f.get("--model"):
        problems.append("the loader has no --model")
    if "--allow-disk-output" in flags(loader)[1] or "--allow-sample-tee" in flags(loader)[1]:
        problems.append("the loader is given a test-only flag (--allow-disk-output / --allow-sample-tee)")

    model_volume = out_mount[0]["name"] if out_mount else None
    for c in spec.get("containers", []):
        for m in c.get("volumeMounts", []):
            if m["name"] == model_volume and not m.get("readOnly"):
                problems.append(f"container {c['name']} mounts the model volume writable")
    if not any(m["name"] == model_volume for c in spec.get("containers", []) for m in c.get("volumeMounts", [])):
        problems.append("no serving container mounts the model volume")
    return problems


def breakages():
    """Broken copies of the rendered objects, each of which a check must catch."""
    def dep(docs):
        return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]

    def set_runtime(docs):
        dep(docs)["spec"]["runtimeClassName"] = "runc"

    def drop_annotation(docs):
        dep(docs)["metadata"]["annotations"].pop(ANNOTATION)

    def disk_volume(docs):
        for v in dep(docs)["spec"]["volumes"]:
            v.get("emptyDir", {}).pop("medium", None)

    def writable_server(docs):
        for c in dep(docs)["spec"]["containers"]:
            for m in c.get("volumeMounts", []):
                m["readOnly"] = False

    def no_loader(docs):
        dep(docs)["spec"]["initContainers"] = []

    def sample_tee(docs):
        dep(docs)["spec"]["initContainers"][0]["args"].append("--allow-sample-tee")

    def initdata_elsewhere(docs):
        args = dep(docs)["spec"]["initContainers"][0]["args"]
        args[:] = ["--initdata=/tmp/initdata" if a.startswith("--initdata") else a for a in args]

    def stale_configmap(docs):
        next(d for d in docs if d["kind"] == "ConfigMap")["data"]["initdata"] = "AAAA"

    return [set_runtime, drop_annotation, disk_volume, writable_server, no_loader, sample_tee,
            initdata_elsewhere, stale_configmap]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--kubectl", default="kubectl")
    args = p.parse_args()
    example = pathlib.Path(args.source) / "deploy" / "examples" / "confidential-model"
    r = subprocess.run([args.kubectl, "kustomize", str(example)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: kubectl kustomize {example}:\n{r.stderr}")
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    for broken in breakages():
        copy_ = copy.deepcopy(docs)
        broken(copy_)
        if not check(copy_, example):
            raise SystemExit(f"FAIL: the checks do not catch the breakage {broken.__name__}")
    problems = check(docs, example)
    for problem in problems:
        print("FAIL:", problem)
    if problems:
        sys.exit(1)
    print(f"ok: {example} renders; {len(breakages())} breakages caught")


if __name__ == "__main__":
    main()
