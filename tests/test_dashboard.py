"""The Grafana dashboard in docs/ uses only metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from resetrelay.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "resetrelay.json"


def _exposed() -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(Metrics().render().decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_expression_names_an_exposed_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bresetrelay_[a-z0-9_]+", expr)}
    assert used and used <= _exposed(), used - _exposed()
    # And every metric family appears on the dashboard: nothing exposed goes unseen.
    families = {n.removesuffix("_total") for n in _exposed()}
    assert families <= {n.removesuffix("_total") for n in used}
