"""The regulator console /ui in a real headless Chromium against `coldchain up`.

Chromium is Debian's (`make test` installs it); Playwright only drives it and never
downloads a browser of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from connectors.api import create_api
from tests._system import System, Tokens, running, wait_for
from tests.factories import disinfection, intake, nucleic_test, outbound

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: A product name that would run script if the page inserted it as HTML.
HOSTILE = '<b>冷冻虾</b><img src="x" onerror="document.title=\'pwned\'"> shrimp'
TIMEOUT_MS = 30_000


def history() -> list[dict[str, Any]]:
    """An imported batch released from PORT undisinfected, and a compliant one beside it."""
    return [
        intake("UI-ALERT", "PORT", 0, zone_id="A1", quantity_kg=800),
        nucleic_test("UI-ALERT", "PORT", 10),
        outbound("UI-ALERT", "PORT", 30, quantity_kg=500, to_site_id="CS-001"),
        intake("UI-ALERT", "CS-001", 90, zone_id="B2", quantity_kg=500, from_site_id="PORT"),
        intake("UI-OK", "PORT", 5, zone_id="A1", quantity_kg=1000, product=HOSTILE),
        disinfection("UI-OK", "PORT", 15),
        nucleic_test("UI-OK", "PORT", 20),
        outbound("UI-OK", "PORT", 40, quantity_kg=1000, to_site_id="CS-001"),
    ]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens.write(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[System]:
    with running(tmp_path_factory.mktemp("ui") / "data", tokens.file) as system:
        response = system.client(tokens.port_site).post("/v1/events", json=history())
        assert response.status_code == 202, response.text
        system.batch(tokens.regulator, "UI-ALERT", 4)
        system.batch(tokens.regulator, "UI-OK", 4)

        def alert_fired() -> bool:
            alerts = (
                system.client(tokens.regulator)
                .get("/v1/alerts", params={"status": "firing", "trace_code": "UI-ALERT"})
                .json()["alerts"]
            )
            return any(a["type"] == "missing_disinfection" for a in alerts)

        wait_for(alert_fired)
        yield system


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs it (Debian package chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own sessionStorage) that records script errors and CSP violations."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "status of 40" not in message.text
            else None
        ),
    )
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


def look_up(page: Page, token: str, code: str) -> None:
    page.fill("#token", token)
    page.click("#token-save")
    page.fill("#code", code)
    page.click("#code-submit")


def test_the_console_shows_a_batch_and_the_firing_alerts(
    system: System, tokens: Tokens, page: Page, tmp_path: Path
) -> None:
    page.goto(system.url + "/ui")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "冷链追溯监管台" in page.title()
    look_up(page, tokens.regulator, "UI-ALERT")

    expect(page.locator("#batch-code")).to_have_text("UI-ALERT")
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(4)
    assert [rows.nth(i).get_attribute("data-event-type") for i in range(4)] == [
        "intake",
        "nucleic_test",
        "outbound",
        "intake",
    ]
    expect(rows.nth(2)).to_contain_text("出库")
    expect(rows.nth(2)).to_contain_text("CS-001")
    expect(page.locator("#certificates [data-status]").first).to_have_attribute(
        "data-status", "missing"
    )
    expect(page.locator("#sites tbody tr")).to_have_count(2)
    expect(page.locator('#batch-alerts tr[data-alert-type="missing_disinfection"]')).to_have_count(
        1
    )
    expect(page.locator('#trace tr[data-hop="1"]')).to_contain_text("CS-001")
    expect(page.locator("#co-stored")).to_contain_text("UI-OK")

    firing = page.locator('#alerts-body tr[data-alert-type="missing_disinfection"]')
    expect(firing.filter(has_text="UI-ALERT")).to_have_count(1)
    expect(firing.filter(has_text="UI-ALERT")).to_contain_text("缺少消杀")
    expect(firing.filter(has_text="UI-ALERT")).to_contain_text("严重")

    # The URL holds the code only; the token lives in this tab's sessionStorage.
    assert page.url == system.url + "/ui?code=UI-ALERT"
    assert page.evaluate("sessionStorage.getItem('coldchain.token')") == tokens.regulator
    assert page.evaluate("document.cookie") == ""
    assert page.input_value("#token") == ""

    screenshot = tmp_path / "console.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")

    # A trace code in the page loads that batch; data is text, never markup.
    page.locator("#co-stored a.code", has_text="UI-OK").first.click()
    expect(page.locator("#batch-code")).to_have_text("UI-OK")
    assert page.url == system.url + "/ui?code=UI-OK"
    expect(page.locator('#declaration dd[data-field="product"]')).to_have_text(HOSTILE)
    assert page.locator("#declaration b, #declaration img").count() == 0
    expect(page.locator("#certificates [data-status]").first).to_have_attribute(
        "data-status", "disinfected"
    )
    expect(page.locator("#batch-alerts")).to_contain_text("本批次没有告警")
    assert page.title() != "pwned"
    assert page.problems == []  # type: ignore[attr-defined]


def test_the_code_in_the_url_is_loaded_and_failures_read_plainly(
    system: System, tokens: Tokens, page: Page, tmp_path: Path
) -> None:
    page.goto(system.url + "/ui?code=UI-OK")
    expect(page.locator("#code")).to_have_value("UI-OK")
    expect(page.locator("#message")).to_contain_text("请先输入访问令牌")

    page.fill("#token", "cc_not-a-real-token")
    page.click("#token-save")
    expect(page.locator("#batch")).to_contain_text("令牌无效")
    expect(page.locator("#alerts-body")).to_contain_text("令牌无效")
    expect(page.locator("#message")).to_contain_text("令牌无效 Invalid token")
    page.screenshot(path=str(tmp_path / "invalid-token.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'invalid-token.png'}")

    look_up(page, tokens.regulator, "NEVER-SEEN")
    expect(page.locator("#batch")).to_contain_text("未找到该批次 Batch not found")

    # With ?code= and a token already in the tab, the batch loads by itself; a failing
    # trace is named and the rest of the batch is still shown.
    page.route(
        "**/v1/batches/*/trace*",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"error": "Not Found"}'
        ),
    )
    page.goto(system.url + "/ui?code=UI-ALERT")
    expect(page.locator("#trace")).to_contain_text("下游追溯暂不可用")
    expect(page.locator("#timeline tbody tr")).to_have_count(4)
    page.screenshot(path=str(tmp_path / "trace-unavailable.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'trace-unavailable.png'}")
    assert page.problems == []  # type: ignore[attr-defined]


def test_the_page_needs_no_token_and_the_worker_serves_none(system: System) -> None:
    response = httpx.get(system.url + "/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy and 'src="http' not in response.text  # nothing external
    assert "/ui" not in httpx.get(system.url + "/openapi.json").json()["paths"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    worker = create_api(
        lambda: None,  # type: ignore[arg-type,return-value]
        tokens=None,
        clock=lambda: datetime.now(UTC),
        lifespan=lifespan,
    )
    assert TestClient(worker).get("/ui").status_code == 404
