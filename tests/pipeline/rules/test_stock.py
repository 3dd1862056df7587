from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pipeline.rules.order import event_order_key
from pipeline.rules.stock import zone_stocks
from tests.factories import disinfection, intake, outbound, parsed, sale


def table(raws):
    events = sorted((parsed(r) for r in raws), key=event_order_key)
    return {
        (s.site_id, s.zone_id): (s.received, s.released, s.on_hand) for s in zone_stocks(events)
    }


def test_release_with_zone_leaves_that_zone() -> None:
    rows = table(
        [
            intake(quantity_kg=100, zone_id="A1", minutes=0),
            intake(quantity_kg=50, zone_id="B2", minutes=1),
            outbound(quantity_kg=30, zone_id="B2", minutes=2),
        ]
    )
    assert rows[("PORT", "A1")] == (100, 0, 100)
    assert rows[("PORT", "B2")] == (50, 30, 20)


def test_release_without_zone_leaves_zones_in_the_order_they_received() -> None:
    rows = table(
        [
            intake(quantity_kg=50, zone_id="B2", minutes=0),
            intake(quantity_kg=100, zone_id="A1", minutes=1),
            outbound(quantity_kg=80, minutes=2),
        ]
    )
    assert rows[("PORT", "B2")] == (50, 50, 0)
    assert rows[("PORT", "A1")] == (100, 30, 70)


def test_over_release_shows_as_negative_stock_of_the_last_zone() -> None:
    rows = table([intake(quantity_kg=10, zone_id="A1"), outbound(quantity_kg=12, minutes=1)])
    assert rows[("PORT", "A1")] == (10, 12, -2)


def test_batch_that_left_a_zone_and_came_back() -> None:
    rows = table(
        [
            intake(quantity_kg=10, zone_id="A1", minutes=0),
            outbound(quantity_kg=10, zone_id="A1", minutes=1),
            intake(quantity_kg=4, zone_id="A1", minutes=2, from_site_id="CS-001"),
            outbound(quantity_kg=1, minutes=3),
        ]
    )
    assert rows[("PORT", "A1")] == (14, 11, 3)


def test_release_at_a_site_that_never_received_has_no_zone() -> None:
    rows = table([sale(site="SHOP-9", quantity_kg=2)])
    assert rows[("SHOP-9", None)] == (0, 2, -2)


def test_certificates_alone_still_list_the_site() -> None:
    rows = table([disinfection(site="LAB")])
    assert rows[("LAB", None)] == (0, 0, 0)


@given(
    intakes=st.lists(
        st.tuples(st.sampled_from("ABC"), st.integers(1, 10_000)), min_size=1, max_size=6
    ),
    releases=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", None]), st.integers(1, 10_000)), max_size=6
    ),
)
def test_kilograms_are_conserved(intakes, releases) -> None:
    raws = [intake(zone_id=z, quantity_kg=q / 1000, minutes=i) for i, (z, q) in enumerate(intakes)]
    raws += [
        outbound(zone_id=z, quantity_kg=q / 1000, minutes=100 + i)
        for i, (z, q) in enumerate(releases)
    ]
    rows = table(raws)
    assert sum(r[0] for r in rows.values()) == sum(Decimal(q) / 1000 for _, q in intakes)
    assert sum(r[1] for r in rows.values()) == sum(Decimal(q) / 1000 for _, q in releases)
    # FIFO never drives a zone below zero while another zone still holds stock.
    if all(z is None for z, _ in releases) and any(r[2] < 0 for r in rows.values()):
        assert all(r[2] <= 0 for r in rows.values())
