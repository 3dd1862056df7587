"""The rules find exactly the faults the demo generator built, and nothing on compliant batches."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from coldchain.demo import build_demo, expected_faults
from pipeline.rules.batch import evaluate_batch
from pipeline.rules.lineage import declaration_of
from pipeline.rules.zones import mixed_storage
from schemas.events import Event, validate_events
from schemas.rules import RuleSet


@pytest.mark.parametrize(
    "anchor",
    [datetime(2026, 11, 26, 1, 41, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)],
)
def test_rules_find_what_the_demo_built(anchor: datetime) -> None:
    demo = build_demo(anchor)
    events, errors = validate_events(demo.events, anchor)
    assert not errors
    by_code: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_code[event.trace_code].append(event)
    rules = RuleSet(version="test")
    found: dict[str, set[str]] = defaultdict(set)
    for code, history in by_code.items():
        for finding in evaluate_batch(code, history, rules):
            found[finding.type].add(finding.trace_code)
    origins = {
        code: (d.origin if (d := declaration_of(history)) else None)
        for code, history in by_code.items()
    }
    for site in {e.site_id for e in events}:
        for finding in mixed_storage(site, by_code, origins, rules):
            found[finding.type].add(finding.trace_code)
    assert dict(found) == {k: v for k, v in expected_faults(demo).items() if v}
