"""Every console route through the real desk and PostgreSQL (httpx against the app)."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest
from console_support import (
    WHOLE_ID,
    City,
    console_app,
    csrf_of,
    post_form,
    sign_in,
)

from desk_support import REGION_A, REGION_B, Desk

pytestmark = [pytest.mark.integration]

ROW = re.compile(r'name="sel" value="([^":]+):(\d+)"')


def rows_of(html: str) -> list[tuple[str, int]]:
    return [(a, int(v)) for a, v in ROW.findall(html)]


async def test_the_login_link_signs_in_and_the_queue_shows_only_the_callers_region(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        answer = await client.get("/login?token=tok-zhao")
        assert answer.status_code == 303
        assert "token" not in answer.headers["location"]  # taken out of the address bar
        page = await client.get("/alerts?size=200")
        assert page.status_code == 200
        ids = rows_of(page.text)
        assert len(ids) == city.a_alerts  # every alert of region A, none of B
        regions = set(re.findall(r"<td>(\d{6})</td>", page.text))
        assert regions == {REGION_A}
        assert not WHOLE_ID.search(page.text)  # masked rows only
        assert "110105***********" in page.text


async def test_the_login_link_is_refused_outside_development(desk: Desk, city: City) -> None:
    async with console_app(desk, development=False) as client:
        answer = await client.get("/login?token=tok-zhao")
        assert answer.status_code == 403
        assert "humiao_session" not in client.cookies


async def test_the_login_form_needs_its_nonce_and_a_known_token(desk: Desk, city: City) -> None:
    async with console_app(desk, development=False) as client:
        form = await client.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce
        forged = await post_form(client, "/login", {"token": "tok-zhao", "nonce": "forged"})
        assert forged.status_code == 403 and "humiao_session" not in client.cookies
        wrong = await post_form(client, "/login", {"token": "nope", "nonce": nonce.group(1)})
        assert wrong.status_code == 401 and "humiao_session" not in client.cookies
        form = await client.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce
        right = await post_form(client, "/login", {"token": "tok-li", "nonce": nonce.group(1),
                                                   "next": "//evil.example/"})
        assert right.status_code == 303 and right.headers["location"] == "/alerts"
        assert (await client.get("/alerts")).status_code == 200


async def test_without_a_session_pages_go_to_sign_in_and_changes_are_refused(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        page = await client.get("/alerts?code=NOT_ENROLLED")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=%2Falerts%3Fcode%3DNOT_ENROLLED")
        for url in ("/alerts/bulk", "/alerts/x/acknowledge", "/export.xlsx"):
            refused = await post_form(client, url, {"csrf": "x"})
            assert refused.status_code == 401, url
        assert (await client.get("/alerts/stream")).status_code == 401
        assert await desk.pool.fetchval("SELECT count(*) FROM alerts WHERE status <> 'OPEN'") == 0


async def test_every_answer_carries_a_strict_policy_and_is_not_cached(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-zhao")
        for url in ("/alerts", "/overview", "/login"):
            answer = await client.get(url)
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
            assert "<script>" not in answer.text and " onclick=" not in answer.text
        cookie = (await client.get("/login?token=tok-zhao")).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie


async def test_filters_travel_in_the_url_and_bad_ones_are_named(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-boss")
        page = await client.get(f"/alerts?region={REGION_B}&code=NOT_ENROLLED&size=200")
        assert len(rows_of(page.text)) == city.b_alerts
        assert re.findall(r"<td>(\d{6})</td>", page.text) == [REGION_B] * city.b_alerts
        death = await client.get("/alerts?code=PAID_AFTER_DEATH")
        assert len(rows_of(death.text)) == city.deaths >= 2
        for bad, field in (("code=NOPE", "code"), ("from=2024-13", "from"),
                           ("from=2024-05&to=2024-01", "to"), ("size=7", "size"),
                           (f"child={city.dead_child}", "child"), ("sort=evil", "sort")):
            answer = await client.get(f"/alerts?{bad}")
            assert answer.status_code == 400, bad
            assert field in answer.text, bad
            assert city.dead_child not in answer.text


async def test_the_queue_pages_by_the_desks_cursor_without_repeats(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-zhao")
        seen: list[str] = []
        url = "/alerts?size=25&sort=amount"
        while url:
            page = await client.get(url.replace("&amp;", "&"))
            seen += [a for a, _ in rows_of(page.text)]
            nxt = re.search(r'href="([^"]+)" rel="next"', page.text)
            url = nxt.group(1) if nxt else ""
        assert len(seen) == len(set(seen)) == city.a_alerts


async def test_bulk_acknowledge_answers_each_alert_and_names_those_that_moved_on(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get("/alerts?code=NOT_ENROLLED&size=25")
        picked = rows_of(page.text)[:3]
        stale = picked[0]
        await desk.pool.execute(  # someone else took the first one meanwhile
            "UPDATE alerts SET version = version + 1 WHERE alert_id = $1", stale[0])
        answer = await post_form(client, "/alerts/bulk", {
            "csrf": csrf_of(page.text), "action": "acknowledge", "note": "批量认领",
            "sel": [f"{a}:{v}" for a, v in picked]})
        assert answer.status_code == 200
        assert "2 / 3" in answer.text
        assert "已被他人更新" in answer.text  # the one that moved on is named, in Chinese
        statuses = dict(await desk.pool.fetch(
            "SELECT alert_id, status FROM alerts WHERE alert_id = ANY($1)",
            [a for a, _ in picked]))
        assert statuses[stale[0]] == "OPEN"
        assert [statuses[a] for a, _ in picked[1:]] == ["ACKNOWLEDGED", "ACKNOWLEDGED"]


async def test_a_change_needs_the_sessions_csrf_token_and_our_own_origin(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get("/alerts?size=25")
        alert_id, version = rows_of(page.text)[0]
        form = {"action": "acknowledge", "sel": f"{alert_id}:{version}"}
        no_token = await post_form(client, "/alerts/bulk", form)
        wrong = await post_form(client, "/alerts/bulk", {**form, "csrf": "guess"})
        other_site = await post_form(client, "/alerts/bulk", {**form, "csrf": csrf_of(page.text)},
                                     origin="https://evil.example")
        assert [r.status_code for r in (no_token, wrong, other_site)] == [403, 403, 403]
        assert await desk.pool.fetchval(
            "SELECT status FROM alerts WHERE alert_id = $1", alert_id) == "OPEN"


async def test_oversized_and_odd_requests_are_refused_before_they_are_read(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get("/alerts?size=25")
        huge = await post_form(client, "/alerts/bulk", {"csrf": csrf_of(page.text),
                                                        "note": "x" * 100_000})
        assert huge.status_code == 413
        assert (await client.request("PUT", "/alerts")).status_code == 405
        assert (await client.get("/alerts/%00%00")).status_code == 404
        back = await client.get("/lang/en?next=//evil.example/x")
        assert back.headers["location"] == "/alerts"


async def test_the_alert_page_is_masked_and_the_whole_id_is_an_audited_click(
    desk: Desk, city: City
) -> None:
    alert_id = await desk.pool.fetchval(
        "SELECT alert_id FROM alerts WHERE code = 'PAID_AFTER_DEATH'")
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get(f"/alerts/{alert_id}")
        assert page.status_code == 200
        assert "死亡后发放" in page.text and "<svg" in page.text
        assert 'class="cell flagged"' in page.text and 'class="cell paid"' in page.text
        assert not WHOLE_ID.search(page.text)
        audits = await desk.pool.fetchval("SELECT count(*) FROM desk_audit")
        shown = await post_form(client, f"/alerts/{alert_id}/reveal",
                                {"csrf": csrf_of(page.text)})
        assert shown.status_code == 200
        assert city.dead_child in shown.text
        title = re.search(r"<title>(.*?)</title>", shown.text, re.S)
        assert title and city.dead_child not in title.group(1)
        assert shown.headers["cache-control"] == "no-store"
        assert await desk.pool.fetchval("SELECT count(*) FROM desk_audit") == audits + 1
        row = await desk.pool.fetchrow(
            "SELECT actor, action FROM desk_audit ORDER BY audit_id DESC LIMIT 1")
        assert (row["actor"], row["action"]) == ("Li", "READ_ALERT_ID")


async def test_a_viewer_is_offered_no_actions_and_the_desk_refuses_them_anyway(
    desk: Desk, city: City
) -> None:
    alert_id = await desk.pool.fetchval(
        "SELECT alert_id FROM alerts WHERE region = $1 LIMIT 1", REGION_A)
    async with console_app(desk) as client:
        await sign_in(client, "tok-viewer-a")
        page = await client.get(f"/alerts/{alert_id}")
        assert f'action="/alerts/{alert_id}/acknowledge"' not in page.text
        forced = await post_form(client, f"/alerts/{alert_id}/acknowledge",
                                 {"csrf": csrf_of(page.text), "version": "1"})
        assert forced.status_code == 403
        assert await desk.pool.fetchval(
            "SELECT status FROM alerts WHERE alert_id = $1", alert_id) == "OPEN"


async def test_another_regions_alert_does_not_exist_for_the_caller(desk: Desk, city: City) -> None:
    alert_id = await desk.pool.fetchval(
        "SELECT alert_id FROM alerts WHERE region = $1 LIMIT 1", REGION_B)
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get(f"/alerts/{alert_id}")
        assert page.status_code == 404
        form = await client.get("/alerts")
        posted = await post_form(client, f"/alerts/{alert_id}/acknowledge",
                                 {"csrf": csrf_of(form.text), "version": "1"})
        assert posted.status_code == 404


async def test_an_investigator_works_an_alert_from_its_page(desk: Desk, city: City) -> None:
    alert_id = await desk.pool.fetchval(
        "SELECT alert_id FROM alerts WHERE code = 'PAID_AFTER_DEATH'")
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get(f"/alerts/{alert_id}")
        token = csrf_of(page.text)
        ack = await post_form(client, f"/alerts/{alert_id}/acknowledge",
                              {"csrf": token, "version": "1", "note": "核实中"})
        assert ack.status_code == 303
        note = await post_form(client, f"/alerts/{alert_id}/note",
                               {"csrf": token, "text": "", "note": "已联系监护人"})
        assert note.status_code == 303
        stale = await post_form(client, f"/alerts/{alert_id}/resolve", {
            "csrf": token, "version": "1", "resolution": "CONFIRMED_IMPROPER",
            "recovered": "1,200.00", "note": "已追回"})
        assert stale.status_code == 409
        done = await post_form(client, f"/alerts/{alert_id}/resolve", {
            "csrf": token, "version": "2", "resolution": "CONFIRMED_IMPROPER",
            "recovered": "1,200.50", "note": "已追回"})
        assert done.status_code == 303
        row = await desk.pool.fetchrow(
            "SELECT status, resolution, amount_recovered_fen FROM alerts WHERE alert_id = $1",
            alert_id)
        assert tuple(row) == ("RESOLVED", "CONFIRMED_IMPROPER", 120_050)
        page = await client.get(f"/alerts/{alert_id}")
        assert "已联系监护人" in page.text and "确认违规" in page.text


async def test_the_overview_adds_up_to_the_queue_and_links_to_it(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-boss")
        page = await client.get("/overview?from=2024-01&to=2024-12")
        assert page.status_code == 200
        total_fen = int(await desk.pool.fetchval(
            "SELECT sum(amount_at_risk_fen) FROM alerts WHERE status = 'OPEN'"))
        yuan = f"{total_fen // 100:,}.{total_fen % 100:02d}"
        assert yuan in page.text
        assert f">{city.a_alerts + city.b_alerts}<" in page.text
        link = re.search(r'href="(/alerts\?[^"]*region=310101[^"]*)"', page.text)
        assert link
        queue = await client.get(link.group(1).replace("&amp;", "&"))
        assert len(rows_of(queue.text)) == city.b_alerts
        assert "<svg" in page.text and 'class="bar"' in page.text


async def test_the_ledger_exports_masked_unless_whole_ids_are_asked_and_audited(
    desk: Desk, city: City
) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        book = await client.get("/export.xlsx?code=PAID_AFTER_DEATH")
        assert book.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:4] == ("序号", "预警编号", "预警类型", "儿童身份证号")
        assert len(rows) == 1 + city.deaths and rows[1][2] == "死亡后发放"
        assert not WHOLE_ID.search(str(rows)) and rows[1][3].startswith("110105*")
        text = (await client.get("/export.csv?size=200")).content.decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(text)))
        assert len(lines) == 1 + city.a_alerts and not WHOLE_ID.search(text)
        page = await client.get("/alerts")
        audits = await desk.pool.fetchval("SELECT count(*) FROM desk_audit")
        whole = await post_form(client, "/export.xlsx", {"csrf": csrf_of(page.text),
                                                         "code": "PAID_AFTER_DEATH"})
        sheet = openpyxl.load_workbook(io.BytesIO(whole.content)).active
        assert sheet is not None
        assert [r[3] for r in sheet.iter_rows(min_row=2, values_only=True)] == (
            [city.dead_child] * city.deaths)
        assert await desk.pool.fetchval("SELECT count(*) FROM desk_audit") == audits + city.deaths


async def test_the_language_switch_is_remembered(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        assert "预警队列" in (await client.get("/alerts")).text
        switched = await client.get("/lang/en?next=/overview")
        assert switched.headers["location"] == "/overview"
        page = await client.get("/alerts")
        assert "Alert queue" in page.text and 'lang="en"' in page.text


async def test_signing_out_ends_the_session(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        page = await client.get("/alerts")
        sid = client.cookies["humiao_session"]
        out = await post_form(client, "/logout", {"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        client.cookies.set("humiao_session", sid)  # the old cookie is worth nothing now
        assert (await client.get("/alerts")).status_code == 303



async def test_whole_id_reads_need_the_token_the_region_and_a_known_alert(
    desk: Desk, city: City
) -> None:
    """The two doors to whole ID numbers (reveal, whole-ID export) refuse a forged form,
    another region's alert and a malformed id, and none of them leaves an audit row."""
    own = await desk.pool.fetchval("SELECT alert_id FROM alerts WHERE code = 'PAID_AFTER_DEATH'")
    other = await desk.pool.fetchval(
        "SELECT alert_id FROM alerts WHERE region = $1 LIMIT 1", REGION_B)
    async with console_app(desk) as client:
        await sign_in(client, "tok-li")
        token = csrf_of((await client.get("/alerts")).text)
        tries = [
            ("/alerts/" + own + "/reveal", {}, 403),
            ("/alerts/" + own + "/reveal", {"csrf": "forged"}, 403),
            ("/alerts/" + other + "/reveal", {"csrf": token}, 404),
            ("/alerts/" + "x" * 65 + "/reveal", {"csrf": token}, 404),
            ("/export.xlsx", {"code": "PAID_AFTER_DEATH"}, 403),
            ("/export.xlsx", {"csrf": token, "region": "11010"}, 400),
        ]
        for url, form, status in tries:
            answer = await post_form(client, url, form)
            assert answer.status_code == status, (url, form, answer.status_code)
            assert city.dead_child not in answer.text
        assert await desk.pool.fetchval("SELECT count(*) FROM desk_audit") == 0


async def test_the_overview_and_the_stream_refuse_bad_filters(desk: Desk, city: City) -> None:
    async with console_app(desk) as client:
        await sign_in(client, "tok-zhao")
        for url in ("/overview?from=2024-13", "/overview?region=abc",
                    "/alerts/stream?code=NOPE", "/export.csv?size=7"):
            answer = await client.get(url)
            assert answer.status_code == 400, url
        assert (await client.get("/export.pdf")).status_code == 404
