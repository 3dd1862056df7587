"""Properties of the rules over generated histories: arrival order and duplicates change
nothing, and a late event that repairs a condition resolves its alert."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.rules.batch import evaluate_batch
from pipeline.rules.lifecycle import alert_id, reconcile
from pipeline.rules.lineage import declaration_of
from pipeline.rules.zones import co_stored, mixed_storage
from schemas.events import Event, Intake, Outbound, Sale
from schemas.rules import RuleSet
from tests.factories import T0, disinfection, intake, nucleic_test, outbound, parsed, sale

RULES = RuleSet(version="test")
NOW = T0 + timedelta(days=1)
SITES = ("PORT", "CS-001", "CS-002", "MKT")
ZONES = ("Z1", "Z2")
PROPERTY = settings(max_examples=60, deadline=None)
SOME_CODES = st.integers(1, 4)
ANY_ORIGIN = st.sampled_from(("imported", "domestic"))

Raw = dict[str, Any]


def kg(grams: int) -> Decimal:
    return Decimal(grams) / 1000


@st.composite
def histories(
    draw: Callable[..., Any],
    codes: st.SearchStrategy[int] = SOME_CODES,
    origins: st.SearchStrategy[str] = ANY_ORIGIN,
    disinfect: bool = True,
) -> list[Raw]:
    """Valid raw events of a few trace codes moving site to site: intakes into zones,
    certificates, sales, outbounds with the matching intake downstream, the odd stray
    event at a site that never received the code. Times tie often (whole minutes)."""
    ids = count()
    raws: list[Raw] = []

    def add(make: Callable[..., Raw], code: str, site: str, minutes: int, **fields: Any) -> None:
        raws.append(make(code, site, minutes, event_id=f"e{next(ids):03d}", **fields))

    for index in range(draw(codes)):
        origin = draw(origins)
        code = f"{origin[0].upper()}{index}"
        site = draw(st.sampled_from(SITES))
        t = draw(st.integers(0, 30))
        grams = draw(st.integers(1, 5000))
        from_site: str | None = None
        for hop in range(draw(st.integers(1, 3))):
            add(
                intake,
                code,
                site,
                t,
                zone_id=draw(st.sampled_from(ZONES)),
                origin=origin,
                product=draw(st.sampled_from(("beef", "beef", "beef", "pork"))),
                quantity_kg=kg(grams),
                from_site_id=from_site,
            )
            if draw(st.booleans()):  # a second lot into the other zone
                add(
                    intake,
                    code,
                    site,
                    t + draw(st.integers(0, 5)),
                    zone_id="Z3",
                    origin=origin,
                    product="beef",
                    quantity_kg=kg(draw(st.integers(1, 500))),
                )
            if disinfect and draw(st.booleans()):
                add(disinfection, code, site, t + draw(st.integers(-3, 15)))
            for _ in range(draw(st.integers(0, 2))):
                result = draw(st.sampled_from(("negative", "negative", "pending", "positive")))
                add(nucleic_test, code, site, t + draw(st.integers(-3, 15)), result=result)
            for _ in range(draw(st.integers(0, 2))):
                add(
                    sale,
                    code,
                    site,
                    t + draw(st.integers(0, 20)),
                    quantity_kg=kg(draw(st.integers(1, grams + 10))),
                    zone_id=draw(st.sampled_from((*ZONES, None))),
                )
            if hop == 0 and draw(st.integers(0, 4)) == 0:
                add(sale, code, "SHOP-9", t + draw(st.integers(-5, 20)), quantity_kg=kg(1))
            if not draw(st.booleans()):
                continue
            sent = draw(st.integers(1, grams))
            to_site = draw(st.sampled_from([s for s in SITES if s != site]))
            t += draw(st.integers(0, 20))
            add(
                outbound,
                code,
                site,
                t,
                quantity_kg=kg(sent),
                to_site_id=to_site,
                zone_id=draw(st.sampled_from((*ZONES, None))),
            )
            grams = sent + draw(st.sampled_from((0, 0, 0, 1, sent // 100 + 1)))
            t += draw(st.integers(0, 20))
            from_site, site = site, to_site
    return raws


def grouped(events: Iterable[Event]) -> dict[str, list[Event]]:
    by_code: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_code[event.trace_code].append(event)
    return dict(by_code)


def comparable(findings: Iterable[Any]) -> list[tuple[str, str]]:
    return sorted((alert_id(f), f.model_dump_json()) for f in findings)


def batch_findings(events: list[Event]) -> list[tuple[str, str]]:
    return comparable(
        f for code, history in grouped(events).items() for f in evaluate_batch(code, history, RULES)
    )


def zone_findings(events: list[Event]) -> list[tuple[str, str]]:
    by_code = grouped(events)
    origins = {
        code: (d.origin if (d := declaration_of(history)) else None)
        for code, history in by_code.items()
    }
    sites = sorted({e.site_id for e in events})
    return comparable(f for site in sites for f in mixed_storage(site, by_code, origins, RULES))


def co_storage(events: list[Event], until: datetime) -> list[tuple[str, str, list[Any]]]:
    by_code = grouped(events)
    sites = sorted({e.site_id for e in events if isinstance(e, Intake)})
    return [
        (code, site, co_stored(code, site, by_code, until))
        for code in sorted(by_code)
        for site in sites
    ]


def arrivals(raws: list[Raw]) -> st.SearchStrategy[list[Event]]:
    """The same events in any order, any of them sent again (parsed anew, as redelivered)."""
    dups = st.lists(st.integers(0, len(raws) - 1), max_size=2 * len(raws))
    return dups.flatmap(
        lambda again: st.permutations([parsed(r) for r in raws] + [parsed(raws[i]) for i in again])
    )


@PROPERTY
@given(data=st.data())
def test_any_order_and_duplicates_give_the_same_findings(data: st.DataObject) -> None:
    raws = data.draw(histories(), label="history")
    events = [parsed(r) for r in raws]
    arrived = data.draw(arrivals(raws), label="arrived")
    assert batch_findings(arrived) == batch_findings(events)
    assert zone_findings(arrived) == zone_findings(events)
    until = T0 + timedelta(minutes=data.draw(st.integers(0, 120), label="until"))
    assert co_storage(arrived, until) == co_storage(events, until)


@PROPERTY
@given(data=st.data())
def test_a_late_earlier_disinfection_resolves_missing_disinfection(data: st.DataObject) -> None:
    raws = data.draw(
        histories(codes=st.just(1), origins=st.just("imported"), disinfect=False), label="history"
    )
    events = [parsed(r) for r in raws]
    code = events[0].trace_code
    before = evaluate_batch(code, events, RULES)
    missing = {alert_id(f) for f in before if f.type == "missing_disinfection"}
    assume(missing)
    firing = reconcile([], before, NOW, RULES.version)

    # Certified at the port of entry at or before the first release; it arrives last.
    declared = declaration_of(events)
    assert declared is not None
    first_release = min(e.occurred_at for e in events if isinstance(e, Outbound | Sale))
    back = timedelta(minutes=data.draw(st.integers(0, 10), label="minutes before"))
    repair = parsed(
        disinfection(
            code,
            declared.site_id,
            (first_release - back - T0) / timedelta(minutes=1),
            event_id="late-disinfection",
        )
    )
    assert repair.occurred_at <= first_release
    after = evaluate_batch(code, [*events, repair], RULES)
    assert not [f for f in after if f.type == "missing_disinfection"]

    changes = reconcile(firing, after, NOW + timedelta(minutes=1), RULES.version)
    resolved = {a.alert_id for a in changes if a.status == "resolved"}
    assert missing <= resolved
    assert all(
        a.resolved_at == NOW + timedelta(minutes=1) for a in changes if a.status == "resolved"
    )
    # Only missing_disinfection resolves: nothing else was repaired.
    assert {a.type for a in changes if a.status == "resolved"} == {"missing_disinfection"}
