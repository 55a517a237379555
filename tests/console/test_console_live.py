"""The console as a browser meets it: a real port, the live stream, and Debian's chromium
driving the queue by keyboard (offline: htmx and its SSE extension are vendored)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from console_support import WHOLE_ID, City, served_console

from desk_support import REGION_A, Desk, unenrolled_payments

pytestmark = [pytest.mark.integration]

CHROMIUM = os.environ.get("HUMIAO_CHROMIUM", "/usr/bin/chromium")


async def test_the_live_stream_says_when_an_alert_of_the_filter_changes(
    desk: Desk, city: City
) -> None:
    async with served_console(desk) as base, httpx.AsyncClient(base_url=base) as client:
        await client.get("/login?token=tok-li")
        async with client.stream("GET", "/alerts/stream?code=NOT_ENROLLED",
                                 timeout=20) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await asyncio.sleep(0.5)  # the desk's watch is at the present
            await desk.verifier.feed(unenrolled_payments(REGION_A, 1, period="2024-07"))
            new_id = await desk.pool.fetchval(
                "SELECT alert_id FROM alerts WHERE period = '2024-07'")

            async def changed() -> str:
                async for line in lines:
                    if line.startswith("data:"):
                        return line.removeprefix("data:").strip()
                return ""

            assert await asyncio.wait_for(changed(), 15) == new_id


async def test_a_stranger_gets_no_stream(desk: Desk, city: City) -> None:
    async with served_console(desk) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/alerts/stream")
        assert answer.status_code == 401


async def test_a_caseworker_works_the_queue_by_keyboard_and_sees_new_alerts_live(
    desk: Desk, city: City, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    async with served_console(desk) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(f"{base}/login?token=tok-li")
            assert page.url == f"{base}/alerts"
            assert "预警队列" in await page.title()
            await page.wait_for_selector("table.queue tbody tr[id]")
            await page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
            # keyboard: j moves to a row, x selects it; twice; then submit the bulk form
            await page.locator("body").focus()
            for key in ("j", "x", "j", "x"):
                await page.keyboard.press(key)
            assert await page.locator("input[name=sel]:checked").count() == 2
            assert await page.locator("tr.selected").count() == 2
            await page.locator("#b-note").fill("电话核实")
            await page.locator("#b-note").press("Enter")
            await page.wait_for_url(f"{base}/alerts/bulk")
            assert "2 / 2" in await page.locator("[role=status]").inner_text()
            assert await desk.pool.fetchval(
                "SELECT count(*) FROM alerts WHERE status = 'ACKNOWLEDGED'") == 2
            # live: a new alert appears with a visible mark, no reload by the person
            await page.goto(f"{base}/alerts?code=NOT_ENROLLED&size=200")
            await page.wait_for_selector("#live")
            await asyncio.sleep(1.0)  # the stream is connected
            kept = page.locator("input[name=sel]").nth(3)
            await kept.check()
            kept_value = await kept.get_attribute("value")
            await desk.verifier.feed(unenrolled_payments(REGION_A, 1, period="2024-08"))
            fresh = page.locator("tr.fresh")
            await fresh.first.wait_for(timeout=15_000)
            assert "有变化" in await fresh.first.inner_text()
            assert await page.locator(f'input[value="{kept_value}"]').is_checked()
            await page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            html = await page.content()
            assert not WHOLE_ID.search(html)
            assert not problems, problems  # no CSP refusal, no script error
        finally:
            await browser.close()
