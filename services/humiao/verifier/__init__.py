"""The verifier service: consumes the events topic as a consumer group, keeps facts and
alerts in PostgreSQL with the consumer offsets in the same transaction, and publishes
alert versions through an outbox. `python -m humiao.verifier` runs it."""
