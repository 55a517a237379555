"""Receivers: each kind speaks its real API (WeCom, DingTalk, Feishu robots, an
Alertmanager-shaped webhook, SMTP) behind one small interface, `Sender`."""
