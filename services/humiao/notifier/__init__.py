"""The notifier: routes alert versions to WeCom, DingTalk, Feishu, webhooks and e-mail,
grouped and rate-limited like Alertmanager's routes, with a daily digest."""
