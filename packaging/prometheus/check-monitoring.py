#!/usr/bin/env python3
"""Checks torii's monitoring files against docs/metrics.md (run by packaging/prometheus/check).

- packaging/grafana/torii-gate.json is valid JSON, and every panel's PromQL expression
  (and every template variable's query) refers only to metrics documented in
  docs/metrics.md's tables (a histogram's _bucket, _sum and _count series included);
- every expression of packaging/prometheus/torii-alerts.yml does too (`up` allowed);
- every alert has severity page or ticket, a runbook pointing at a heading of
  docs/operations/alarms.md, and a firing and a not-firing case in torii-alerts.test.yml.

promtool checks the rules' syntax and runs their tests; it cannot check PromQL on its
own, which is why the metric names are checked here. Standard library only.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs/metrics.md"
DASHBOARD = ROOT / "packaging/grafana/torii-gate.json"
RULES = ROOT / "packaging/prometheus/torii-alerts.yml"
RULE_TESTS = ROOT / "packaging/prometheus/torii-alerts.test.yml"
ALARMS_DOC = ROOT / "docs/operations/alarms.md"

TYPES = {"counter", "gauge", "histogram", "summary"}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "atan2", "inf", "nan",
}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}

errors = []


def documented_metrics():
    """Metric names from the tables of docs/metrics.md: rows whose second cell is a type."""
    names = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in TYPES:
            continue
        for name in re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0]):
            names[name] = cells[1]
    series = set()
    for name, kind in names.items():
        series.add(name)
        for suffix in SUFFIXES.get(kind, ()):
            series.add(name + suffix)
    return names, series


def metric_names(expr):
    """The metric names an expression refers to."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )
    names = set()
    # A name followed by "(" or by an aggregation's "by"/"without" is a function.
    for match in re.finditer(
        r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\(|\s+(?:by|without)\b)?", text
    ):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def check_expr(where, expr, known, extra=()):
    names = metric_names(expr)
    if not names:
        errors.append(f"{where}: no metric in {expr!r}")
    for name in sorted(names - known - set(extra)):
        errors.append(f"{where}: {name} is not in docs/metrics.md ({expr!r})")
    return names


def check_dashboard(known):
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as e:
        errors.append(f"{DASHBOARD.relative_to(ROOT)}: not valid JSON: {e}")
        return set()
    used = set()

    def walk(panels):
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                if "expr" not in target:
                    errors.append(f"dashboard panel {panel.get('title')!r}: a target without expr")
                    continue
                used.update(check_expr(f"dashboard panel {panel.get('title')!r}", target["expr"], known))
            if panel.get("type") != "row" and not panel.get("targets"):
                errors.append(f"dashboard panel {panel.get('title')!r}: no queries")

    walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("definition", "")
        match = re.match(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", query)
        if not match or match.group(1) not in known:
            errors.append(f"dashboard variable {var.get('name')}: {query!r} does not name a documented metric")
    if dashboard.get("schemaVersion", 0) < 36:
        errors.append("dashboard: schemaVersion below 36")
    return used


def check_rules(known):
    text = RULES.read_text()
    alerts = []
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            current = {"name": stripped.split(":", 1)[1].strip()}
            alerts.append(current)
        elif current is None:
            continue
        elif stripped.startswith("expr:"):
            current["expr"] = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("severity:"):
            current["severity"] = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("runbook:"):
            current["runbook"] = stripped.split(":", 1)[1].strip().strip('"')
    headings = set()
    if ALARMS_DOC.exists():
        for line in ALARMS_DOC.read_text().splitlines():
            if line.startswith("#"):
                title = line.lstrip("#").strip().lower()
                headings.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    else:
        errors.append(f"{ALARMS_DOC.relative_to(ROOT)} is missing")
    cases = {}
    tests = RULE_TESTS.read_text().splitlines()
    for i, line in enumerate(tests):
        match = re.match(r"\s*alertname:\s*(\S+)", line)
        if match and i + 1 < len(tests):
            firing = tests[i + 1].strip() != "exp_alerts: []"
            cases.setdefault(match.group(1), set()).add(firing)
    used = set()
    for alert in alerts:
        where = f"alert {alert['name']}"
        if "expr" not in alert:
            errors.append(f"{where}: no single-line expr")
        else:
            used.update(check_expr(where, alert["expr"], known, extra=("up",)))
        if alert.get("severity") not in ("page", "ticket"):
            errors.append(f"{where}: severity is {alert.get('severity')!r}, not page or ticket")
        runbook = alert.get("runbook", "")
        if not runbook.startswith("docs/operations/alarms.md#"):
            errors.append(f"{where}: runbook {runbook!r} is not a section of docs/operations/alarms.md")
        elif runbook.split("#", 1)[1] not in headings:
            errors.append(f"{where}: docs/operations/alarms.md has no heading for {runbook!r}")
        got = cases.get(alert["name"], set())
        if True not in got:
            errors.append(f"{where}: no firing case in {RULE_TESTS.name}")
        if False not in got:
            errors.append(f"{where}: no not-firing case in {RULE_TESTS.name}")
    return alerts, used


def main():
    names, known = documented_metrics()
    if len(names) < 10:
        errors.append(f"docs/metrics.md: only {len(names)} metrics found in its tables")
    used = check_dashboard(known)
    alerts, used_by_rules = check_rules(known)
    if errors:
        for error in errors:
            print(f"check-monitoring: {error}", file=sys.stderr)
        return 1
    print(
        f"check-monitoring: {len(alerts)} alerts and the dashboard use "
        f"{len((used | used_by_rules) & known)} of {len(names)} documented metrics; all documented"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
