"""The console's words in Chinese (the default) and English, and how numbers and times
read: amounts in yuan with thousands separators, times in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from humiao.domain.labels import CODES_ZH, STATUS_ZH
from humiao.domain.values import format_fen as yuan  # noqa: F401  (integer fen as yuan)

LANGUAGES = ("zh", "en")
SHANGHAI = ZoneInfo("Asia/Shanghai")

RESOLUTIONS_ZH = {"CONFIRMED_IMPROPER": "确认违规", "FALSE_POSITIVE": "误报",
                  "DATA_CORRECTED": "数据已更正", "OTHER": "其他"}
PROGRAMS_ZH = {"ORPHAN_INSTITUTIONAL": "集中养育孤儿", "ORPHAN_DISPERSED": "社会散居孤儿",
               "DE_FACTO_UNSUPPORTED": "事实无人抚养儿童"}
ROLES_ZH = {"viewer": "查看员", "investigator": "核查员", "supervisor": "主管"}

WORDS: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "app": ("护苗 · 预警工作台", "Humiao · alert console"),
    "skip": ("跳到主要内容", "Skip to main content"),
    "queue": ("预警队列", "Alert queue"),
    "overview": ("总览", "Overview"),
    "sign_out": ("退出", "Sign out"),
    "sign_in": ("登录", "Sign in"),
    "token": ("工作人员令牌", "Staff token"),
    "sign_in_oidc": ("使用单位统一身份认证登录", "Sign in with your organisation"),
    "sign_in_failed": ("令牌无效或已停用。", "The token is not valid or was deactivated."),
    "signed_out": ("登录已过期，请重新登录。", "Your session ended; please sign in again."),
    "language": ("English", "中文"),
    "filters": ("筛选", "Filters"),
    "region": ("地区", "Region"),
    "code": ("预警类型", "Alert type"),
    "status": ("状态", "Status"),
    "period": ("期间", "Period"),
    "period_from": ("期间起", "Period from"),
    "period_to": ("期间止", "Period to"),
    "assignee": ("承办人", "Assignee"),
    "mine": ("只看我的", "Only mine"),
    "child": ("儿童", "Child"),
    "amount": ("涉及金额(元)", "Amount at risk (yuan)"),
    "recovered": ("追回金额(元)", "Recovered (yuan)"),
    "age": ("已过时间", "Age"),
    "sort": ("排序", "Sort"),
    "sort_raised": ("发现时间", "Raised"),
    "sort_amount": ("涉及金额", "Amount at risk"),
    "sort_period": ("期间", "Period"),
    "ascending": ("升序", "Ascending"),
    "apply": ("查询", "Apply"),
    "clear_filters": ("清除筛选", "Clear filters"),
    "page_size": ("每页条数", "Rows per page"),
    "any": ("全部", "Any"),
    "select": ("选择", "Select"),
    "select_all": ("全选本页", "Select all on this page"),
    "bulk": ("批量操作", "Bulk actions"),
    "acknowledge": ("认领", "Acknowledge"),
    "assign": ("指派", "Assign"),
    "resolve": ("办结", "Resolve"),
    "reopen": ("重新打开", "Reopen"),
    "add_note": ("添加备注", "Add note"),
    "note": ("备注", "Note"),
    "reason": ("理由", "Reason"),
    "resolution": ("处置结果", "Resolution"),
    "submit": ("提交", "Submit"),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "total": ("共", "Total"),
    "alerts": ("条预警", "alerts"),
    "no_alerts": ("没有符合条件的预警。", "No alerts match."),
    "changed": ("有变化", "changed"),
    "live": ("实时更新已连接", "Live updates on"),
    "export_xlsx": ("导出整改台账 (Excel)", "Export ledger (Excel)"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_whole": ("导出含完整身份证号的台账（将被审计）",
                     "Export with whole ID numbers (audited)"),
    "explanation": ("说明", "Explanation"),
    "evidence": ("依据事实", "Evidence"),
    "timeline": ("儿童时间线", "Child's timeline"),
    "history": ("版本历史", "Version history"),
    "notes": ("备注", "Notes"),
    "audit": ("审计记录", "Audit trail"),
    "actions": ("操作", "Actions"),
    "show_whole_id": ("显示完整身份证号（将被审计）", "Show the whole ID number (audited)"),
    "whole_id_shown": ("完整身份证号已显示，本次查看已记录。",
                       "The whole ID number is shown; this read is recorded."),
    "version": ("版本", "Version"),
    "changed_by": ("操作人", "Changed by"),
    "changed_at": ("时间", "When"),
    "kind": ("类型", "Kind"),
    "recorded_at": ("记录时间", "Recorded"),
    "event_id": ("事实编号", "Fact id"),
    "alert_id": ("预警编号", "Alert id"),
    "not_held": ("（未找到该事实）", "(fact not held)"),
    "raised": ("发现时间", "Raised"),
    "updated": ("更新时间", "Updated"),
    "program": ("保障类别", "Program"),
    "subject": ("发放编号", "Disbursement"),
    "done": ("已完成", "Done"),
    "not_done": ("未完成", "Not done"),
    "results": ("批量操作结果", "Bulk action results"),
    "back_to_queue": ("返回队列", "Back to the queue"),
    "open_alerts": ("未办结预警", "Open alerts"),
    "at_risk": ("风险金额(元)", "At risk (yuan)"),
    "by_region": ("按地区", "By region"),
    "by_code": ("按预警类型", "By alert type"),
    "by_month": ("按月份（风险金额）", "By month (amount at risk)"),
    "median_ack": ("认领用时中位数", "Median time to acknowledge"),
    "median_resolve": ("办结用时中位数", "Median time to resolve"),
    "over_alerts": ("条预警", "alerts"),
    "all_alerts": ("全部预警", "All alerts"),
    "legend_paid": ("已发放", "paid"),
    "legend_flagged": ("有预警", "flagged"),
    "legend_reversed": ("已冲正/撤回", "reversed or retracted"),
    "legend_due": ("在保期内未见发放", "enrolled, no payment seen"),
    "enrolled": ("纳入保障", "enrolled"),
    "ended": ("退出保障", "enrollment ended"),
    "guardian": ("监护人", "guardian"),
    "died": ("死亡", "death"),
    "adopted": ("收养", "adoption"),
    "adult": ("年满18周岁", "18th birthday"),
    "extension": ("在校延长", "schooling extension"),
    "parent_status": ("父母情形变化", "parent's situation"),
    "payments": ("发放", "Payments"),
    "events": ("事件", "Events"),
    "error": ("出错了", "Something went wrong"),
    "err_not_found": ("没有找到该预警，或您无权查看。", "No such alert, or not yours to see."),
    "err_forbidden": ("您的角色不能执行此操作。", "Your role may not do this."),
    "err_moved_on": ("预警已被他人更新，请刷新后再试。",
                     "The alert has moved on; reload and try again."),
    "err_invalid": ("输入有误", "Invalid input"),
    "err_limited": ("已达到每小时查看完整身份证号的上限。",
                    "You reached the hourly limit of whole-ID reads."),
    "err_unavailable": ("预警服务暂不可用，请稍后再试。",
                        "The alert desk is unavailable; try again shortly."),
    "err_signed_out": ("登录已失效。", "You are signed out."),
    "err_csrf": ("表单已过期，请返回刷新后重试。", "The form expired; go back, reload, try again."),
    "err_too_large": ("提交的内容过大。", "What was sent is too large."),
    "err_bad_filter": ("筛选条件有误", "A filter is not valid"),
    "err_too_many": ("结果太多，请缩小筛选范围。", "Too many results; narrow the filter."),
    "hours": ("小时", "h"),
    "days": ("天", "d"),
    "minutes": ("分钟", "min"),
    "none": ("无", "none"),
    "role": ("角色", "Role"),
}


_BY_LANGUAGE = {lang: {key: pair[i] for key, pair in WORDS.items()}
                for i, lang in enumerate(LANGUAGES)}


def words(lang: str) -> dict[str, str]:
    """The words of `lang` (Chinese for anything else); built once, read per row."""
    return _BY_LANGUAGE.get(lang, _BY_LANGUAGE["zh"])


def code_label(code: str, lang: str) -> str:
    return CODES_ZH.get(code, code) if lang == "zh" else code.replace("_", " ").capitalize()


def status_label(status: str, lang: str) -> str:
    return STATUS_ZH.get(status, status) if lang == "zh" else status.capitalize()


def resolution_label(resolution: str, lang: str) -> str:
    if lang == "zh":
        return RESOLUTIONS_ZH.get(resolution, resolution)
    return resolution.replace("_", " ").capitalize()


def program_label(program: str, lang: str) -> str:
    if lang == "zh":
        return PROGRAMS_ZH.get(program, program)
    return program.replace("_", " ").capitalize()


def local_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float, lang: str) -> str:
    """A short age: minutes under an hour, hours under two days, days after."""
    w = words(lang)
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{int(seconds // 60)} {w['minutes']}"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} {w['hours']}"
    return f"{int(seconds // 86400)} {w['days']}"
