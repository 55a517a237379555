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


async def test_a_caseworker_day_in_the_browser(desk: Desk, city: City, tmp_path: Path) -> None:
    """Filter, open an alert, reveal the whole ID (audited), acknowledge, resolve, export
    the ledger and read it back, switch language; a viewer sees no actions and a forged
    post is refused. HUMIAO_SCREENSHOTS=DIR keeps the screenshots the README shows."""
    import openpyxl
    from playwright.async_api import async_playwright

    shots = Path(os.environ.get("HUMIAO_SCREENSHOTS") or tmp_path)
    async with served_console(desk) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 860})
            await page.goto(f"{base}/login?token=tok-li")
            await page.screenshot(path=str(shots / "queue.png"))
            await page.locator("#f-code").select_option("PAID_AFTER_DEATH")
            await page.get_by_role("button", name="查询").click()
            await page.wait_for_url("**/alerts?*code=PAID_AFTER_DEATH*")
            assert await page.locator("table.queue tbody tr[id]").count() == city.deaths
            await page.locator("table.queue tbody tr[id] a").first.click()
            await page.wait_for_url("**/alerts/A*")
            assert "110105***" in await page.locator("#child-id").inner_text()
            await page.screenshot(path=str(shots / "alert.png"), full_page=True)
            audits = await desk.pool.fetchval("SELECT count(*) FROM desk_audit")
            await page.get_by_role("button", name="显示完整身份证号（将被审计）").click()
            await page.wait_for_load_state()
            assert await page.locator("#child-id").inner_text() == city.dead_child
            assert await desk.pool.fetchval("SELECT count(*) FROM desk_audit") == audits + 1
            alert_url = page.url.removesuffix("/reveal")
            await page.goto(alert_url)
            await page.locator("#a-note-acknowledge").fill("核实中")
            await page.get_by_role("button", name="认领").click()
            await page.wait_for_url(alert_url)
            await page.locator("#a-resolution").select_option("CONFIRMED_IMPROPER")
            await page.locator("#a-recovered").fill("1,200.00")
            await page.locator("#a-note-resolve").fill("已追回")
            await page.get_by_role("button", name="办结").click()
            await page.wait_for_url(alert_url)
            assert "已办结" in await page.locator("h1").inner_text()
            await page.goto(f"{base}/alerts?code=PAID_AFTER_DEATH")
            async with page.expect_download() as info:
                await page.get_by_role("link", name="导出整改台账 (Excel)").click()
            saved = tmp_path / "ledger.xlsx"
            await (await info.value).save_as(saved)
            sheet = openpyxl.load_workbook(saved).active
            assert sheet is not None and sheet.max_row == 1 + city.deaths
            await page.get_by_role("link", name="English").click()
            await page.wait_for_url("**/alerts?*")
            assert "Alert queue" in await page.locator("h1").inner_text()

            viewer = await browser.new_page()
            await viewer.goto(f"{base}/login?token=tok-viewer-a")
            await viewer.goto(alert_url)
            assert await viewer.locator("form.action").count() == 0
            forged = await viewer.request.post(f"{alert_url}/acknowledge",
                                               form={"version": "1", "csrf": "forged"})
            assert forged.status == 403
        finally:
            await browser.close()
