"""The shipped alert rules and Grafana dashboard name only metrics Skyfleet exports.

Why in Python: promtool (Prometheus's own checker) is not installed where these tests run, and
installing a Prometheus binary for one check is heavier than the check. This test does the part of
``promtool check rules`` that matters for Skyfleet: the file is valid YAML of the rule-file shape
(groups of named rules, each with an alert name, an expression, a ``for`` duration and a severity),
every expression's parentheses, braces and brackets balance, every function it calls is a PromQL
function, and every metric it names is one that ``GET /metrics`` declares (``# TYPE`` lines of a real
scrape, with the ``_bucket``/``_count``/``_sum`` and ``_total`` series those types add), or
Prometheus's own ``up``. A renamed metric thus fails here instead of silently never alerting. It
does not evaluate PromQL semantics (vector matching, types of binary operands); promtool does, when
present: ``promtool check rules deploy/prometheus/alerts.yml``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "skyfleet.json"
FUNCTIONS = {"rate", "irate", "increase", "sum", "avg", "min", "max", "count", "topk", "bottomk", "clamp_min",
             "clamp_max", "histogram_quantile", "absent", "abs", "delta", "deriv", "time", "label_replace",
             "avg_over_time", "max_over_time", "min_over_time", "quantile", "sort_desc", "vector", "scalar"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
PROMETHEUS_OWN = {"up"}
DURATION = re.compile(r"^\d+[smhdwy]$")


def exported_names(client: TestClient) -> set[str]:
    """Every series name a scrape can hold, from its ``# TYPE`` lines."""
    names: set[str] = set()
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            elif kind == "counter":
                names |= {name if name.endswith("_total") else f"{name}_total"}
    return names


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) an expression uses."""
    for opening, closing in ("()", "{}", "[]"):
        assert expr.count(opening) == expr.count(closing), f"unbalanced {opening}{closing} in {expr!r}"
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)  # label lists
    functions = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*\(", bare))
    words = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", bare))
    metrics = {w for w in words - functions - KEYWORDS if not DURATION.match(w) and w not in ("e", "Inf", "NaN")}
    return metrics, functions


def rule_exprs() -> list[tuple[str, str]]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    out = []
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"Skyfleet[A-Za-z]+", rule["alert"]) and DURATION.match(rule["for"]), rule
            assert rule["labels"]["severity"] in ("info", "warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            out.append((rule["alert"], rule["expr"]))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    document = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in document["panels"] for target in panel["targets"]]


def test_the_alert_rules_cover_the_promised_cases() -> None:
    alerts = {name for name, _ in rule_exprs()}
    assert {"SkyfleetSiteOffline", "SkyfleetQuotaBreached", "SkyfleetTasksStuck"} <= alerts
    assert len(alerts) == len(rule_exprs()), "duplicate alert names"


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_expression_names_only_exported_metrics_and_promql_functions(client: TestClient, source: str) -> None:
    exported = exported_names(client) | PROMETHEUS_OWN
    exprs = rule_exprs() if source == "rules" else dashboard_exprs()
    assert exprs
    for name, expr in exprs:
        metrics, functions = names_in(expr)
        assert metrics, f"{name}: names no metric: {expr}"
        assert metrics <= exported, f"{name}: {sorted(metrics - exported)} not exported by Skyfleet"
        assert functions <= FUNCTIONS, f"{name}: unknown function(s) {sorted(functions - FUNCTIONS)}"


def test_the_checker_catches_a_misspelt_metric_and_a_bad_function() -> None:
    metrics, functions = names_in('sum by (kind) (rat(skyfleet_task_run_total{outcome="failed"}[5m])) > 0.1')
    assert metrics == {"skyfleet_task_run_total"} and functions == {"sum", "rat"}
    with pytest.raises(AssertionError, match="unbalanced"):
        names_in("sum(skyfleet_sites")
