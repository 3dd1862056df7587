"""The demo history that ``coldchain up --demo`` loads.

About a fortnight of imported and domestic frozen food moving through one port supervision
warehouse (港口监管仓), three cold storages (冷库), a processor (加工厂), three wholesale
markets (批发市场) and four shops. A few batches are built to go wrong, so that every alert
of contract section 2 has something real to show; :func:`expected_faults` names them.

The events are raw dicts, exactly what a cold storage system would POST, so that loading the
demo goes through the same validation and pipeline as real traffic.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from schemas.alerts import ALERT_TYPES

Origin = Literal["imported", "domestic"]
SiteKind = Literal["port_warehouse", "cold_storage", "processor", "market", "shop"]
TestResult = Literal["negative", "positive", "pending"]

#: China Standard Time: the sites' local clock, and the offset every demo ``occurred_at`` carries.
CST: Final = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class DemoSite:
    site_id: str
    name_zh: str
    name_en: str
    kind: SiteKind


@dataclass(frozen=True)
class Highlight:
    trace_code: str
    why_zh: str
    why_en: str


@dataclass(frozen=True)
class DemoSet:
    sites: tuple[DemoSite, ...]
    #: Raw event dicts in ``occurred_at`` order, ready to POST or to write as JSONL.
    events: tuple[dict[str, object], ...]
    #: Three batches worth a look, the positive nucleic test first.
    highlights: tuple[Highlight, ...]
    #: Alert type -> the trace codes built to raise it; read it through :func:`expected_faults`.
    faults: Mapping[str, frozenset[str]]


DEMO_SITES: Final[tuple[DemoSite, ...]] = (
    DemoSite(
        "PORT-01",
        "洋山港进口冷链食品监管仓",
        "Yangshan Port Cold Chain Supervision Warehouse",
        "port_warehouse",
    ),
    DemoSite(
        "CS-001",
        "浦东冷链物流一号冷库",
        "Pudong Cold Chain Logistics Cold Storage No. 1",
        "cold_storage",
    ),
    DemoSite(
        "CS-002", "嘉定冷链物流中心冷库", "Jiading Cold Chain Logistics Centre", "cold_storage"
    ),
    DemoSite("CS-003", "松江低温仓储冷库", "Songjiang Low-Temperature Storage", "cold_storage"),
    DemoSite("PROC-01", "闵行肉类分割加工厂", "Minhang Meat Cutting Plant", "processor"),
    DemoSite("MKT-01", "江桥农产品批发市场", "Jiangqiao Agricultural Wholesale Market", "market"),
    DemoSite(
        "MKT-02",
        "西郊水产冻品批发市场",
        "Xijiao Seafood and Frozen Food Wholesale Market",
        "market",
    ),
    DemoSite("MKT-03", "七宝综合批发市场", "Qibao General Wholesale Market", "market"),
    DemoSite("SHOP-01", "鲜丰生鲜超市（长宁店）", "Xianfeng Fresh Supermarket (Changning)", "shop"),
    DemoSite("SHOP-02", "鲜丰生鲜超市（徐汇店）", "Xianfeng Fresh Supermarket (Xuhui)", "shop"),
    DemoSite("SHOP-03", "惠邻社区菜场冻品摊", "Huilin Community Market Frozen Stall", "shop"),
    DemoSite("SHOP-04", "海港冻品专营店", "Haigang Frozen Food Store", "shop"),
)


def _site_ids(kind: SiteKind) -> tuple[str, ...]:
    return tuple(site.site_id for site in DEMO_SITES if site.kind == kind)


(_PORT,) = _site_ids("port_warehouse")
(_PROCESSOR,) = _site_ids("processor")
_COLD_STORAGES = _site_ids("cold_storage")
_MARKETS = _site_ids("market")
_SHOPS = _site_ids("shop")
_KIND_OF = {site.site_id: site.kind for site in DEMO_SITES}

# Imported goods must sit in dedicated zones (进口专区, "A"), domestic goods in the general
# ones ("C"): keeping them apart is what lets compliant batches never share stock in a zone.
_ZONES: Final[Mapping[SiteKind, Mapping[Origin, tuple[str, ...]]]] = {
    "port_warehouse": {"imported": ("A1", "A2", "A3", "A4"), "domestic": ()},
    "cold_storage": {"imported": ("A1", "A2", "A3"), "domestic": ("C1", "C2")},
    "market": {"imported": ("A1", "A2"), "domestic": ("C1", "C2")},
    "shop": {"imported": ("A1",), "domestic": ("C1",)},
}
# How the contract reads events of one instant; the demo is posted in that order too, so that
# reading it front to back is the contract's reading.
_SAME_INSTANT_ORDER: Final = ("intake", "disinfection", "nucleic_test", "outbound", "sale")

_RAW_ZONE: Final = "A1"  # the processor's intake zone for the lots it cuts
_PACKED_ZONE: Final = "B1"  # and where the cut products wait for dispatch


@dataclass(frozen=True)
class _Product:
    name: str
    #: ISO 3166-1 countries for imports, GB/T 2260 province codes for domestic goods.
    sources: tuple[str, ...]
    #: What the processor cuts a lot of it into; empty when it is sold as it comes.
    cuts: tuple[str, ...] = ()


_IMPORTS: Final = (
    _Product(
        "冷冻牛肉 Frozen beef",
        ("BR", "AR", "AU"),
        ("冷冻牛腩块 Frozen beef brisket cubes", "冷冻肥牛卷 Frozen sliced beef rolls"),
    ),
    _Product(
        "冷冻猪肉 Frozen pork",
        ("ES", "DE", "DK"),
        ("冷冻猪五花片 Frozen pork belly slices", "冷冻猪肋排段 Frozen pork rib pieces"),
    ),
    _Product("冷冻白虾 Frozen white shrimp", ("EC", "IN")),
    _Product("冷冻三文鱼 Frozen salmon", ("NO", "CL")),
    _Product("冷冻鸡翅 Frozen chicken wings", ("BR", "US")),
)
_DOMESTIC: Final = (
    _Product("冷冻猪肉 Frozen pork", ("HA", "SD", "SC")),
    _Product("冷冻鸡翅 Frozen chicken wings", ("SD", "LN")),
    _Product("冷冻牛肉 Frozen beef", ("NM", "HL")),
    _Product("冷冻带鱼 Frozen hairtail", ("ZJ", "FJ")),
)

_BUYERS: Final = (
    "金桥餐饮管理有限公司 Jinqiao Catering Management Co.",
    "长宁区中小学集体食堂 Changning school canteens",
    "沪西老火锅 Huxi Hotpot",
    "王记冻品批发 Wang's Frozen Food Wholesale",
    "浦江酒店后厨 Pujiang Hotel kitchen",
    "李氏海鲜大排档 Li's Seafood Restaurant",
    "徐汇区机关食堂 Xuhui district office canteen",
    "个体批发商 陈某 Independent wholesaler Chen",
)
_RETAIL: Final = "门店零售（当日合计） Retail sales (daily total)"
_PROCESSING_INPUT: Final = "分割加工投料 Input to the cutting line"
_DISINFECTANTS: Final = (
    ("喷洒 Spraying", "过氧乙酸 Peracetic acid"),
    ("喷洒 Spraying", "含氯消毒剂 Chlorine disinfectant"),
    ("擦拭 Wiping", "二氧化氯 Chlorine dioxide"),
)
_PORT_LAB: Final = "海关口岸核酸检测实验室 Customs port nucleic acid laboratory"
_PLANT_LAB: Final = "第三方检测机构 Third-party testing laboratory"
_SAMPLING_LAB: Final = "区疾控中心实验室 District CDC laboratory"


@dataclass(frozen=True)
class _Batch:
    code: str
    origin: Origin
    product: str
    country: str | None
    customs_no: str | None
    quarantine_no: str | None
    cuts: tuple[str, ...]


@dataclass(frozen=True)
class _Stop:
    """A lot of a batch received at a site: where, since when, and how many grams."""

    site: str
    zone: str
    at: datetime
    grams: int


def _kilograms(grams: int) -> float:
    # A correctly rounded int / 1000 prints as its exact 3-decimal value.
    return grams / 1000


def _split(rng: random.Random, grams: int, parts: int) -> list[int]:
    """Uneven positive shares that add up to exactly ``grams``."""
    weights = [rng.uniform(1.0, 3.0) for _ in range(parts)]
    total = sum(weights)
    shares = [int(grams * weight / total) for weight in weights[:-1]]
    return [*shares, grams - sum(shares)]


class _Builder:
    """Writes the events of one demo history; every choice comes from ``rng``."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        #: Each event with its place in the order the contract reads them in.
        self.timeline: list[tuple[tuple[datetime, int, str], dict[str, object]]] = []
        self.faults: dict[str, set[str]] = {alert: set() for alert in ALERT_TYPES}
        self._events_of: dict[str, int] = {}
        self._children_of: dict[str, int] = {}
        self._serials: set[int] = set()
        self._documents = 0

    # -- time and place

    def later(self, at: datetime, low_hours: float, high_hours: float) -> datetime:
        return at + timedelta(
            minutes=self.rng.randint(round(low_hours * 60), round(high_hours * 60))
        )

    def daytime(self, first_day: int, last_day: int) -> datetime:
        """A working-hours moment ``first_day``..``last_day`` days into the fortnight."""
        fortnight_ago = (self.now - timedelta(days=14)).replace(hour=0, minute=0)
        day = fortnight_ago + timedelta(days=self.rng.randint(first_day, last_day))
        return day + timedelta(minutes=self.rng.randint(6 * 60, 19 * 60))

    def zone(self, site: str, origin: Origin) -> str:
        return self.rng.choice(_ZONES[_KIND_OF[site]][origin])

    def container(self) -> int:
        """Net grams of one reefer container's lot."""
        return self.rng.randint(8_000_000, 26_000_000)

    # -- batches

    def _serial(self) -> int:
        # Random rather than running numbers, so that a code does not betray when it was built.
        serial = self.rng.randint(1, 9999)
        while serial in self._serials:
            serial = self.rng.randint(1, 9999)
        self._serials.add(serial)
        return serial

    def imported(self, arrival: datetime, product: _Product | None = None) -> _Batch:
        product = product or self.rng.choice(_IMPORTS)
        country = self.rng.choice(product.sources)
        return _Batch(
            code=f"IMP-{country}-{arrival:%Y%m%d}-{self._serial():04d}",
            origin="imported",
            product=product.name,
            country=country,
            customs_no=f"2248{arrival:%Y}{self.rng.randrange(10**10):010d}",
            quarantine_no=f"3100{arrival:%y}{self.rng.randrange(10**12):012d}",
            cuts=product.cuts,
        )

    def domestic(self, arrival: datetime) -> _Batch:
        product = self.rng.choice(_DOMESTIC)
        province = self.rng.choice(product.sources)
        return _Batch(
            code=f"DOM-{province}-{arrival:%Y%m%d}-{self._serial():04d}",
            origin="domestic",
            product=product.name,
            country=None,
            customs_no=None,
            quarantine_no=None,
            cuts=(),
        )

    def flag(self, alert: str, code: str) -> str:
        self.faults[alert].add(code)
        return code

    # -- events

    def _emit(self, event_type: str, code: str, site: str, at: datetime, **fields: object) -> None:
        number = self._events_of.get(code, 0) + 1
        self._events_of[code] = number
        # Plans run past the anchor; what lies beyond it has simply not happened yet.
        if at > self.now:
            return
        event_id = f"demo-{code}-{number}"
        self.timeline.append(
            (
                (at, _SAME_INSTANT_ORDER.index(event_type), event_id),
                {
                    "event_id": event_id,
                    "event_type": event_type,
                    "trace_code": code,
                    "site_id": site,
                    "occurred_at": at.isoformat(),
                    **{name: value for name, value in fields.items() if value is not None},
                },
            )
        )

    def _document(self, prefix: str, at: datetime) -> str:
        self._documents += 1
        return f"{prefix}{at:%Y%m%d}{self._documents:05d}"

    def intake(
        self,
        batch: _Batch,
        site: str,
        zone: str,
        at: datetime,
        grams: int,
        *,
        from_site: str | None = None,
        parents: tuple[str, ...] = (),
        product: str | None = None,
        country: str | None = None,
    ) -> _Stop:
        self._emit(
            "intake",
            batch.code,
            site,
            at,
            zone_id=zone,
            origin=batch.origin,
            product=product or batch.product,
            country_of_origin=country or batch.country,
            quantity_kg=_kilograms(grams),
            from_site_id=from_site,
            parent_trace_codes=list(parents) or None,
            customs_declaration_no=batch.customs_no,
            quarantine_cert_no=batch.quarantine_no,
        )
        return _Stop(site, zone, at, grams)

    def outbound(self, batch: _Batch, stop: _Stop, at: datetime, grams: int, to_site: str) -> None:
        plate = f"沪{self.rng.choice('ABDFH')}{self.rng.randrange(10**5):05d}"
        self._emit(
            "outbound",
            batch.code,
            stop.site,
            at,
            quantity_kg=_kilograms(grams),
            to_site_id=to_site,
            zone_id=stop.zone,
            vehicle_plate=plate,
        )

    def sale(
        self, batch_code: str, site: str, zone: str | None, at: datetime, grams: int, buyer: str
    ) -> None:
        self._emit(
            "sale", batch_code, site, at, quantity_kg=_kilograms(grams), zone_id=zone, buyer=buyer
        )

    def disinfect(self, batch: _Batch, site: str, at: datetime) -> None:
        method, agent = self.rng.choice(_DISINFECTANTS)
        self._emit(
            "disinfection",
            batch.code,
            site,
            at,
            certificate_no=self._document("XD", at),
            method=method,
            agent=agent,
        )

    def nucleic_test(
        self,
        batch: _Batch,
        site: str,
        at: datetime,
        result: TestResult,
        lab: str,
        sample_type: Literal["product", "packaging"] = "packaging",
    ) -> None:
        self._emit(
            "nucleic_test",
            batch.code,
            site,
            at,
            result=result,
            report_no=self._document("HS", at),
            sample_type=sample_type,
            lab=lab,
        )

    def ship(
        self, batch: _Batch, stop: _Stop, to_site: str, to_zone: str, leave: datetime, grams: int
    ) -> _Stop:
        self.outbound(batch, stop, leave, grams, to_site)
        return self.intake(
            batch, to_site, to_zone, self.later(leave, 1, 4), grams, from_site=stop.site
        )

    def certify(self, batch: _Batch, site: str, after: datetime, lab: str) -> datetime:
        """Disinfection, then a negative test: what an imported lot needs before it may leave."""
        disinfected = self.later(after, 1, 4)
        self.disinfect(batch, site, disinfected)
        tested = self.later(disinfected, 1, 4)
        self.nucleic_test(batch, site, tested, "negative", lab)
        return tested

    # -- the compliant journey, stage by stage

    def through_port(self, batch: _Batch, arrival: datetime, zone: str) -> None:
        stop = self.intake(batch, _PORT, zone, arrival, self.container())
        self.leave_port(batch, stop, self.certify(batch, _PORT, arrival, _PORT_LAB))

    def leave_port(self, batch: _Batch, stop: _Stop, ready: datetime) -> None:
        leave = self.later(ready, 4, 20)
        storages = self.rng.sample(_COLD_STORAGES, self.rng.randint(1, 2))
        for site, grams in zip(storages, _split(self.rng, stop.grams, len(storages)), strict=True):
            self.at_cold_storage(
                batch, self.ship(batch, stop, site, self.zone(site, "imported"), leave, grams)
            )
            leave = self.later(leave, 0.5, 3)

    def at_cold_storage(self, batch: _Batch, stop: _Stop) -> None:
        leave = self.later(stop.at, 12, 60)
        # Cold storages keep a reserve, so part of the lot usually stays on hand.
        sending = round(stop.grams * self.rng.uniform(0.6, 1.0))
        destinations = self.rng.sample(_MARKETS, self.rng.randint(1, 2))
        if batch.cuts and self.rng.random() < 0.35:
            destinations.append(_PROCESSOR)
        shares = _split(self.rng, sending, len(destinations))
        for site, grams in zip(destinations, shares, strict=True):
            if site == _PROCESSOR:
                self.process(batch, self.ship(batch, stop, site, _RAW_ZONE, leave, grams))
            else:
                zone = self.zone(site, batch.origin)
                self.at_market(batch, self.ship(batch, stop, site, zone, leave, grams))
            leave = self.later(leave, 1, 18)

    def process(self, parent: _Batch, stop: _Stop) -> None:
        """Cut a lot into child batches with their own codes, each certified before dispatch."""
        cut_at = self.later(stop.at, 2, 8)
        # The raw lot is used up by cutting: a sale closes its stock at the plant, and the cuts
        # carry on under child codes that name it as their parent.
        self.sale(parent.code, stop.site, stop.zone, cut_at, stop.grams, _PROCESSING_INPUT)
        packed = self.later(cut_at, 1, 3)
        output = round(stop.grams * self.rng.uniform(0.88, 0.96))
        for cut, grams in zip(parent.cuts, _split(self.rng, output, len(parent.cuts)), strict=True):
            self._children_of[parent.code] = self._children_of.get(parent.code, 0) + 1
            child = replace(
                parent,
                code=f"{parent.code}-{self._children_of[parent.code]:02d}",
                product=cut,
                cuts=(),
            )
            lot = self.intake(child, stop.site, _PACKED_ZONE, packed, grams, parents=(parent.code,))
            ready = self.certify(child, stop.site, packed, _PLANT_LAB)
            market = self.rng.choice(_MARKETS)
            zone = self.zone(market, "imported")
            self.at_market(
                child, self.ship(child, lot, market, zone, self.later(ready, 2, 10), grams)
            )

    def at_market(self, batch: _Batch, stop: _Stop) -> None:
        if self.rng.random() < 0.15:
            # Market supervisors sample lots on the stalls (抽检).
            self.nucleic_test(
                batch,
                stop.site,
                self.later(stop.at, 1, 6),
                "negative",
                _SAMPLING_LAB,
                sample_type="product",
            )
        to_shop = round(stop.grams * self.rng.uniform(0.05, 0.15)) if self.rng.random() < 0.6 else 0
        # Never all of it: a market lot ends the demo with something on hand.
        selling = round(stop.grams * self.rng.uniform(0.5, 0.95)) - to_shop
        sold_at = stop.at
        for grams in _split(self.rng, selling, self.rng.randint(4, 8)):
            sold_at = self.later(sold_at, 1, 10)
            self.sale(batch.code, stop.site, stop.zone, sold_at, grams, self.rng.choice(_BUYERS))
        if to_shop:
            shop = self.rng.choice(_SHOPS)
            zone = self.zone(shop, batch.origin)
            self.at_shop(
                batch, self.ship(batch, stop, shop, zone, self.later(stop.at, 2, 24), to_shop)
            )

    def at_shop(self, batch: _Batch, stop: _Stop) -> None:
        selling = round(stop.grams * self.rng.uniform(0.6, 1.0))
        sold_at = stop.at
        for grams in _split(self.rng, selling, self.rng.randint(2, 5)):
            sold_at = self.later(sold_at, 10, 26)
            # Shops book one till total a day and keep one freezer per origin: no zone named.
            self.sale(batch.code, stop.site, None, sold_at, grams, _RETAIL)

    def domestic_delivery(self, arrival: datetime) -> None:
        batch = self.domestic(arrival)
        # Domestic suppliers are outside the system, so the first intake names no sender.
        site = self.rng.choice(_COLD_STORAGES if self.rng.random() < 0.6 else _MARKETS)
        stop = self.intake(
            batch,
            site,
            self.zone(site, "domestic"),
            arrival,
            self.rng.randint(1_500_000, 9_000_000),
        )
        if _KIND_OF[site] == "cold_storage":
            self.at_cold_storage(batch, stop)
        else:
            self.at_market(batch, stop)

    # -- building blocks of the faulty scenarios

    def at_port(self, batch: _Batch, arrival: datetime) -> _Stop:
        return self.intake(batch, _PORT, self.zone(_PORT, "imported"), arrival, self.container())

    def to_cold_storage(self, batch: _Batch, arrival: datetime) -> _Stop:
        """The compliant port leg, ending with the whole lot in one cold storage."""
        stop = self.at_port(batch, arrival)
        leave = self.later(self.certify(batch, _PORT, arrival, _PORT_LAB), 4, 12)
        site = self.rng.choice(_COLD_STORAGES)
        return self.ship(batch, stop, site, self.zone(site, "imported"), leave, stop.grams)

    def to_market(self, batch: _Batch, arrival: datetime) -> tuple[_Stop, datetime, int]:
        """The compliant journey up to leaving a cold storage: (its lot, when, grams to send)."""
        stop = self.to_cold_storage(batch, arrival)
        return stop, self.later(stop.at, 12, 36), round(stop.grams * self.rng.uniform(0.4, 0.7))


# -- the faulty scenarios: each returns the trace code it was built to raise alerts for


def _no_disinfection(b: _Builder, arrival: datetime) -> str:
    # Tested negative at the port, but released without any disinfection at all.
    batch = b.imported(arrival)
    stop = b.at_port(batch, arrival)
    tested = b.later(arrival, 2, 6)
    b.nucleic_test(batch, _PORT, tested, "negative", _PORT_LAB)
    b.leave_port(batch, stop, tested)
    return b.flag("missing_disinfection", batch.code)


def _disinfected_after_release(b: _Builder, arrival: datetime) -> str:
    # The cold storage disinfected it on receipt: its own releases are fine, the port's is not.
    batch = b.imported(arrival)
    stop = b.at_port(batch, arrival)
    tested = b.later(arrival, 2, 6)
    b.nucleic_test(batch, _PORT, tested, "negative", _PORT_LAB)
    site = b.rng.choice(_COLD_STORAGES)
    lot = b.ship(batch, stop, site, b.zone(site, "imported"), b.later(tested, 3, 8), stop.grams)
    b.disinfect(batch, site, b.later(lot.at, 0.5, 2))
    b.at_cold_storage(batch, lot)
    return b.flag("missing_disinfection", batch.code)


def _no_nucleic_test(b: _Builder, arrival: datetime) -> str:
    batch = b.imported(arrival)
    stop = b.at_port(batch, arrival)
    disinfected = b.later(arrival, 1, 4)
    b.disinfect(batch, _PORT, disinfected)
    b.leave_port(batch, stop, disinfected)
    return b.flag("missing_nucleic_test", batch.code)


def _released_while_pending(b: _Builder, arrival: datetime) -> str:
    # Sampled, and shipped before the laboratory answered: a pending result is no clearance.
    batch = b.imported(arrival)
    stop = b.at_port(batch, arrival)
    disinfected = b.later(arrival, 1, 4)
    b.disinfect(batch, _PORT, disinfected)
    sampled = b.later(disinfected, 1, 3)
    b.nucleic_test(batch, _PORT, sampled, "pending", _PORT_LAB)
    b.leave_port(batch, stop, sampled)
    return b.flag("missing_nucleic_test", batch.code)


def _positive_downstream(b: _Builder, arrival: datetime) -> str:
    """Cleared at the port, spread to a processor and a market, then found positive there."""
    product = b.rng.choice([product for product in _IMPORTS if product.cuts])
    batch = b.imported(arrival, product)
    port = b.at_port(batch, arrival)
    # Same vessel, same port zone: these lots are what the batch was co-stored with.
    for _ in range(2):
        companion = b.later(arrival, 0, 0.5)
        b.through_port(b.imported(companion), companion, port.zone)
    leave = b.later(b.certify(batch, _PORT, arrival, _PORT_LAB), 4, 12)
    site = b.rng.choice(_COLD_STORAGES)
    lot = b.ship(batch, port, site, b.zone(site, "imported"), leave, port.grams)
    to_plant = b.later(lot.at, 12, 24)
    b.process(batch, b.ship(batch, lot, _PROCESSOR, _RAW_ZONE, to_plant, round(lot.grams * 0.3)))
    market = b.rng.choice(_MARKETS)
    stall = b.ship(
        batch,
        lot,
        market,
        b.zone(market, "imported"),
        b.later(to_plant, 1, 4),
        round(lot.grams * 0.5),
    )
    sold_at = stall.at
    for grams in _split(b.rng, round(stall.grams * 0.4), 2):
        sold_at = b.later(sold_at, 2, 8)
        b.sale(batch.code, stall.site, stall.zone, sold_at, grams, b.rng.choice(_BUYERS))
    b.nucleic_test(
        batch, market, b.later(sold_at, 4, 12), "positive", _SAMPLING_LAB, sample_type="product"
    )
    return b.flag("positive_nucleic_test", batch.code)


def _positive_at_port(b: _Builder, arrival: datetime) -> str:
    # Customs found it on arrival; the lot is sealed (封存) at the port and never leaves.
    batch = b.imported(arrival)
    b.at_port(batch, arrival)
    b.nucleic_test(batch, _PORT, b.later(arrival, 2, 6), "positive", _PORT_LAB)
    return b.flag("positive_nucleic_test", batch.code)


def _imported_in_domestic_zone(b: _Builder, arrival: datetime) -> str:
    # Put away into a cold storage's general zone, next to a domestic lot that arrived shortly
    # before; that lot is still full when the imported one comes in (its first release is 12 h on).
    batch = b.imported(arrival)
    port = b.at_port(batch, arrival)
    leave = b.later(b.certify(batch, _PORT, arrival, _PORT_LAB), 4, 12)
    site = b.rng.choice(_COLD_STORAGES)
    zone = b.zone(site, "domestic")
    b.outbound(batch, port, leave, port.grams, site)
    neighbour_in = b.later(leave, 0, 1)
    neighbour = b.domestic(neighbour_in)
    b.at_cold_storage(
        neighbour,
        b.intake(neighbour, site, zone, neighbour_in, b.rng.randint(2_000_000, 6_000_000)),
    )
    received = b.later(leave, 2, 4)
    b.at_cold_storage(batch, b.intake(batch, site, zone, received, port.grams, from_site=_PORT))
    return b.flag("mixed_storage", batch.code)


def _imported_on_domestic_stall(b: _Builder, arrival: datetime) -> str:
    # Same at a market; a market never sells a lot out, so the domestic neighbour stays put.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    zone = b.zone(market, "domestic")
    b.outbound(batch, lot, leave, grams, market)
    neighbour_in = b.later(leave, 0, 1)
    neighbour = b.domestic(neighbour_in)
    b.at_market(
        neighbour,
        b.intake(neighbour, market, zone, neighbour_in, b.rng.randint(1_500_000, 4_000_000)),
    )
    received = b.later(leave, 2, 4)
    b.at_market(batch, b.intake(batch, market, zone, received, grams, from_site=lot.site))
    return b.flag("mixed_storage", batch.code)


def _sold_where_never_received(b: _Builder, arrival: datetime) -> str:
    # One market passed part of its lot to another, which sold it without booking it in.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    first, second = b.rng.sample(_MARKETS, 2)
    stall = b.ship(batch, lot, first, b.zone(first, "imported"), leave, grams)
    passed_on = round(stall.grams * 0.2)
    handed_over = b.later(stall.at, 2, 6)
    b.outbound(batch, stall, handed_over, passed_on, second)
    b.sale(
        batch.code,
        second,
        "A1",
        b.later(handed_over, 3, 8),
        round(passed_on * 0.5),
        b.rng.choice(_BUYERS),
    )
    b.at_market(batch, replace(stall, at=handed_over, grams=stall.grams - passed_on))
    return b.flag("unknown_trace_code", batch.code)


def _mistyped_code(b: _Builder, arrival: datetime) -> str:
    # A clerk dropped a digit of a real code when booking a sale: that code exists nowhere.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    stall = b.ship(batch, lot, market, b.zone(market, "imported"), leave, grams)
    b.at_market(batch, stall)
    typo = batch.code[:-4] + batch.code[-3:]
    b.sale(
        typo,
        market,
        stall.zone,
        b.later(stall.at, 1, 4),
        round(stall.grams * 0.05),
        b.rng.choice(_BUYERS),
    )
    return b.flag("unknown_trace_code", typo)


def _over_shipped(b: _Builder, arrival: datetime) -> str:
    # The cold storage shipped 2 % more than it ever received; each market got what was sent.
    batch = b.imported(arrival)
    lot = b.to_cold_storage(batch, arrival)
    leave = b.later(lot.at, 12, 36)
    markets = b.rng.sample(_MARKETS, 2)
    for market, grams in zip(markets, _split(b.rng, round(lot.grams * 1.02), 2), strict=True):
        b.at_market(batch, b.ship(batch, lot, market, b.zone(market, "imported"), leave, grams))
        leave = b.later(leave, 1, 6)
    return b.flag("quantity_exceeded", batch.code)


def _over_sold(b: _Builder, arrival: datetime) -> str:
    # A market's sales add up to 1.5 % more than its intake.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    stall = b.ship(batch, lot, market, b.zone(market, "imported"), leave, grams)
    sold_at = stall.at
    for share in _split(b.rng, round(stall.grams * 1.015), 4):
        sold_at = b.later(sold_at, 1, 10)
        b.sale(batch.code, market, stall.zone, sold_at, share, b.rng.choice(_BUYERS))
    return b.flag("quantity_exceeded", batch.code)


def _wrong_country(b: _Builder, arrival: datetime) -> str:
    # The cold storage booked it under another exporting country than the port declared.
    product = b.rng.choice(_IMPORTS)
    batch = b.imported(arrival, product)
    port = b.at_port(batch, arrival)
    leave = b.later(b.certify(batch, _PORT, arrival, _PORT_LAB), 4, 12)
    site = b.rng.choice(_COLD_STORAGES)
    b.outbound(batch, port, leave, port.grams, site)
    other = next(country for country in product.sources if country != batch.country)
    lot = b.intake(
        batch,
        site,
        b.zone(site, "imported"),
        b.later(leave, 1, 4),
        port.grams,
        from_site=_PORT,
        country=other,
    )
    b.at_cold_storage(batch, lot)
    return b.flag("info_mismatch", batch.code)


def _wrong_product(b: _Builder, arrival: datetime) -> str:
    # The market picked the wrong product from its list when booking the lot in.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    b.outbound(batch, lot, leave, grams, market)
    wrong = b.rng.choice([product.name for product in _IMPORTS if product.name != batch.product])
    stall = b.intake(
        batch,
        market,
        b.zone(market, "imported"),
        b.later(leave, 1, 4),
        grams,
        from_site=lot.site,
        product=wrong,
    )
    b.at_market(batch, stall)
    return b.flag("info_mismatch", batch.code)


def _heavier_than_sent(b: _Builder, arrival: datetime) -> str:
    # The market weighed in 3 % more than the cold storage sent it (ice glaze, tare forgotten).
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    b.outbound(batch, lot, leave, grams, market)
    stall = b.intake(
        batch,
        market,
        b.zone(market, "imported"),
        b.later(leave, 1, 4),
        round(grams * 1.03),
        from_site=lot.site,
    )
    b.at_market(batch, stall)
    return b.flag("info_mismatch", batch.code)


def _wrong_sender(b: _Builder, arrival: datetime) -> str:
    # The market named another cold storage as the sender, one that never shipped this code.
    batch = b.imported(arrival)
    lot, leave, grams = b.to_market(batch, arrival)
    market = b.rng.choice(_MARKETS)
    b.outbound(batch, lot, leave, grams, market)
    named = b.rng.choice([site for site in _COLD_STORAGES if site != lot.site])
    stall = b.intake(
        batch, market, b.zone(market, "imported"), b.later(leave, 1, 4), grams, from_site=named
    )
    b.at_market(batch, stall)
    return b.flag("info_mismatch", batch.code)


def build_demo(anchor: datetime) -> DemoSet:
    """The demo history of the fortnight before ``anchor`` (which must carry an offset).

    The same anchor always gives the same demo: the random choices are seeded by it.
    """
    if anchor.utcoffset() is None:
        raise ValueError("anchor must be timezone-aware, e.g. datetime.now(UTC)")
    now = anchor.astimezone(CST).replace(second=0, microsecond=0)
    # Reproducible on purpose: the same demo for the same anchor, nothing secret about it.
    rng = random.Random(f"coldchain-demo-{now.isoformat()}")  # noqa: S311
    b = _Builder(now, rng)

    # One vessel (two containers, sharing a port zone) and one domestic delivery on most days:
    # spread out like this, the demo's size hardly depends on the anchor.
    for day in sorted(b.rng.sample(range(14), 12)):
        arrival = b.daytime(day, day)
        zone = b.zone(_PORT, "imported")
        for _ in range(2):
            unloaded = b.later(arrival, 0, 1)
            b.through_port(b.imported(unloaded), unloaded, zone)
    for day in sorted(b.rng.sample(range(14), 12)):
        b.domestic_delivery(b.daytime(day, day))

    # Faulty batches arrive early enough for what makes them faulty to lie before the anchor.
    positive = _positive_downstream(b, b.daytime(1, 5))
    pending = _released_while_pending(b, b.daytime(1, 6))
    mixed = _imported_in_domestic_zone(b, b.daytime(1, 6))
    for scenario in (
        _no_disinfection,
        _disinfected_after_release,
        _no_nucleic_test,
        _positive_at_port,
        _imported_on_domestic_stall,
        _sold_where_never_received,
        _mistyped_code,
        _over_shipped,
        _over_sold,
        _wrong_country,
        _wrong_product,
        _heavier_than_sent,
        _wrong_sender,
    ):
        scenario(b, b.daytime(1, 6))

    events = tuple(event for _, event in sorted(b.timeline, key=lambda item: item[0]))
    highlights = (
        Highlight(
            positive,
            "核酸检测阳性：检出前已流入下游加工厂和批发市场、分割出子追溯码，并与其他批次同库区存放",
            "Positive nucleic test, found after the batch had reached a processor and a wholesale "
            "market, been cut into child trace codes, and shared storage zones with other batches",
        ),
        Highlight(
            pending,
            "核酸检测结果未出（待定）即从港口监管仓出库",
            "Released from the port supervision warehouse while its nucleic test was still pending",
        ),
        Highlight(
            mixed,
            "进口冷链食品存入冷库国产货物区，与国产批次混存",
            "Imported frozen food put away in a cold storage's domestic zone, mixed with domestic "
            "stock",
        ),
    )
    return DemoSet(
        sites=DEMO_SITES,
        events=events,
        highlights=highlights,
        faults={alert: frozenset(codes) for alert, codes in b.faults.items()},
    )


def expected_faults(demo: DemoSet) -> dict[str, set[str]]:
    """Alert type -> the trace codes the demo was built to raise it for (and no others)."""
    return {alert: set(codes) for alert, codes in demo.faults.items()}
