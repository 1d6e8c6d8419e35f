#!/usr/bin/python3
"""Checks deploy/monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), the Grafana dashboard is valid JSON, and every metric, label and label
value that a query of the dashboard or a rule names is one the daemon exports (the metrics contract
below). The contract's own checks are exercised on known-bad queries first, so a checker that
stopped seeing anything fails too.

Usage: check_monitoring.py --source <repository root> [--promtool promtool]
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys

import yaml

# The metrics contract of cloud-api-adaptor (its /metrics on the -probe-port): name -> label ->
# allowed values (None: any value, e.g. a provider name or a version).
CONTRACT = {
    "peerpods_sandboxes": {"state": {"created", "starting", "running"}},
    "peerpods_startvm_duration_seconds": {"provider": None, "outcome": {"ok", "error"}},
    "peerpods_provider_errors_total": {
        "provider": None,
        "class": {"unavailable", "throttled", "not_found", "capacity", "misconfigured", "deadline",
                  "cancelled", "other"}},
    "peerpods_provider_calls_total": {"provider": None, "operation": {"create", "delete", "list", "verify"}},
    "peerpods_provider_up": {"provider": None},
    "peerpods_agent_proxy_connections": {},
    "peerpods_agent_proxy_bytes_total": {"direction": {"to_vm", "from_vm"}},
    "peerpods_reconcile_runs_total": {"result": {"ok", "error"}},
    "peerpods_reconcile_orphans_found_total": {},
    "peerpods_reconcile_orphans_deleted_total": {},
    "peerpods_limit_per_node": {},
    "peerpods_limit_rejections_total": {},
    "peerpods_build_info": {"version": None},
}
HISTOGRAMS = {"peerpods_startvm_duration_seconds"}
# Labels Prometheus attaches to every scraped series (the target's).
TARGET_LABELS = {"instance", "job", "namespace", "pod", "node"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset"}


def resolve(name):
    """The contract entry a series name belongs to, with the labels it may carry, or None."""
    if name in CONTRACT:
        return dict(CONTRACT[name])
    for base in HISTOGRAMS:
        for suffix in ("_bucket", "_sum", "_count"):
            if name == base + suffix:
                labels = dict(CONTRACT[base])
                if suffix == "_bucket":
                    labels["le"] = None
                return labels
    return None


def check_query(expr):
    """Problems with the metric names, labels and label values a PromQL query names."""
    problems = []
    allowed_anywhere = set(TARGET_LABELS)
    # Selectors with label matchers: name{a="x", b=~"y|z"}.
    for m in re.finditer(r'([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}', expr):
        name, matchers = m.group(1), m.group(2)
        if not name or name in PROMQL_WORDS:
            problems.append(f"selector without a metric name: {m.group(0)!r}")
            continue
        labels = resolve(name)
        if labels is None:
            continue  # reported below as an unknown metric
        for lm in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
            label, op, value = lm.groups()
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                problems.append(f"{name} has no label {label!r}")
                continue
            values = labels[label]
            if values is None or "$" in value:
                continue
            alternatives = value.split("|") if op in ("=~", "!~") else [value]
            for alt in alternatives:
                if alt not in values:
                    problems.append(f"{name}{{{label}}} has no value {alt!r} (contract: {sorted(values)})")
    # What remains once strings, matchers, ranges, grouping clauses and variables are removed:
    # functions (followed by a parenthesis), keywords, numbers and metric names.
    rest = re.sub(r'"[^"]*"', " ", expr)
    rest = re.sub(r'\{[^}]*\}', " ", rest)
    rest = re.sub(r'\[[^\]]*\]', " ", rest)
    grouped = set()
    for g in re.finditer(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)', rest):
        grouped |= {x.strip() for x in g.group(2).split(",") if x.strip()}
    rest = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', " ", rest)
    rest = re.sub(r'\$\{?[A-Za-z_][A-Za-z0-9_]*\}?', " ", rest)
    names = set()
    for t in re.finditer(r'(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?', rest):
        word, call = t.group(1), t.group(2)
        if call or word in PROMQL_WORDS:
            continue
        names.add(word)
        labels = resolve(word)
        if labels is None:
            problems.append(f"unknown metric {word!r}")
        else:
            allowed_anywhere |= set(labels)
    for label in sorted(grouped - allowed_anywhere):
        problems.append(f"groups by {label!r}, which none of {sorted(names)} carries")
    if not names:
        problems.append("names no metric")
    return problems, names


def dashboard_queries(dash):
    """Every PromQL query of a dashboard: panel targets (rows included) and query variables."""
    queries = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    queries.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r'label_values\((.*),\s*([A-Za-z_]+)\)', q.strip())
            if not m:
                queries.append((f"variable {v['name']}", q))
                continue
            queries.append((f"variable {v['name']}", m.group(1)))
            if resolve(m.group(1).strip()) is not None and m.group(2) not in TARGET_LABELS \
                    and m.group(2) not in resolve(m.group(1).strip()):
                queries.append((f"variable {v['name']}", f'{m.group(1)}{{{m.group(2)}="$x"}}'))
    return queries


def self_test():
    """The checks catch what they are for."""
    bad = {
        'rate(peerpods_startvm_seconds_count[5m])': "unknown metric",
        'sum by (klass) (rate(peerpods_provider_errors_total[5m]))': "groups by 'klass'",
        'peerpods_provider_errors_total{klass="capacity"}': "no label 'klass'",
        'peerpods_provider_errors_total{class="quota"}': "no value 'quota'",
        'peerpods_provider_errors_total{class=~"capacity|quota"}': "no value 'quota'",
        'histogram_quantile(0.5, sum by (le) (rate(peerpods_sandboxes_bucket[5m])))': "unknown metric",
        'up == 0': "unknown metric 'up'",
    }
    good = [
        'histogram_quantile(0.95, sum by (le, provider) (rate(peerpods_startvm_duration_seconds_bucket{instance=~"$instance", outcome="ok"}[$__rate_interval])))',
        'sum by (instance) (peerpods_sandboxes) >= on (instance) max by (instance) (peerpods_limit_per_node)',
    ]
    failures = []
    for expr, expected in bad.items():
        problems, _ = check_query(expr)
        if not any(expected in p for p in problems):
            failures.append(f"self-test: {expr!r} should give {expected!r}, got {problems}")
    for expr in good:
        problems, _ = check_query(expr)
        if problems:
            failures.append(f"self-test: {expr!r} should pass, got {problems}")
    return failures


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        return [f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, type=pathlib.Path)
    ap.add_argument("--promtool", default="promtool")
    args = ap.parse_args()
    args.source = args.source.resolve()
    mon = args.source / "deploy" / "monitoring"
    rules_file = mon / "peerpods-alerts.yaml"
    tests_file = args.source / "tests" / "deploy" / "peerpods-alerts-test.yaml"

    problems = self_test()
    problems += run([args.promtool, "check", "rules", str(rules_file)], args.source)
    problems += run([args.promtool, "test", "rules", str(tests_file)], tests_file.parent)

    # Every rule has summary, description and runbook, and a unit test that expects it to fire.
    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"]]
    tests = yaml.safe_load(tests_file.read_text())["tests"]
    fired, silent = set(), set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    rule_metrics = set()
    for r in rules:
        name = r.get("alert", r.get("record"))
        for key in ("summary", "description", "runbook"):
            if not r.get("annotations", {}).get(key):
                problems.append(f"rule {name}: no {key} annotation")
        if name not in fired:
            problems.append(f"rule {name}: no unit test where it fires")
        if name not in silent:
            problems.append(f"rule {name}: no unit test where it must not fire")
        p, names = check_query(r["expr"])
        problems += [f"rule {name}: {x}" for x in p]
        rule_metrics |= names
    for needed in ("peerpods_startvm_duration_seconds_count", "peerpods_provider_errors_total",
                   "peerpods_provider_up", "peerpods_reconcile_orphans_found_total",
                   "peerpods_reconcile_orphans_deleted_total", "peerpods_sandboxes",
                   "peerpods_limit_per_node", "peerpods_limit_rejections_total"):
        if needed not in rule_metrics:
            problems.append(f"no alert rule watches {needed}")

    try:
        dash = json.loads((mon / "peerpods-dashboard.json").read_text())
    except json.JSONDecodeError as e:
        problems.append(f"peerpods-dashboard.json is not valid JSON: {e}")
        dash = {}
    queries = dashboard_queries(dash)
    if not queries:
        problems.append("the dashboard has no queries")
    shown = set()
    for where, expr in queries:
        p, names = check_query(expr)
        problems += [f"dashboard {where}: {x}" for x in p]
        shown |= names
    # The dashboard covers the whole contract.
    shown_bases = {n if n in CONTRACT else re.sub(r'_(bucket|sum|count)$', "", n) for n in shown}
    for metric in sorted(set(CONTRACT) - shown_bases):
        problems.append(f"the dashboard shows nothing of {metric}")

    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"ok: {len(rules)} rules checked and unit-tested, {len(queries)} dashboard queries over "
          f"{len(shown_bases)} contract metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
