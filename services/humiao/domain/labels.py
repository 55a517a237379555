"""Chinese names of alert codes and statuses, shared by the CLI tables and the notifier's
messages so staff read the same words everywhere."""

from __future__ import annotations

CODES_ZH = {
    "PAID_AFTER_DEATH": "死亡后发放",
    "PAID_AFTER_AGE_OUT": "超龄后发放",
    "PAID_AFTER_ADOPTION": "收养后发放",
    "PAID_AFTER_PARENT_SITUATION_ENDED": "父母情形消失后发放",
    "ORPHAN_PARENT_ALIVE": "孤儿父母尚在",
    "PAID_AFTER_ENROLLMENT_ENDED": "退出保障后发放",
    "PAID_BEFORE_APPROVAL": "审批前发放",
    "NOT_ENROLLED": "未纳入保障",
    "DUPLICATE_PAYMENT": "重复发放",
    "AMOUNT_MISMATCH": "金额不符",
    "PAYEE_NOT_GUARDIAN": "收款人非监护人",
    "PAYEE_DECEASED": "收款人已死亡",
    "MISSED_PAYMENT": "漏发",
}
STATUS_ZH = {
    "OPEN": "待处理",
    "ACKNOWLEDGED": "处理中",
    "RESOLVED": "已办结",
    "WITHDRAWN": "已撤销",
    "REOPENED": "重新打开",
}
