"""The pure domain core: events, values, validation, timelines, rules, alerts.

Nothing in this package imports Kafka, gRPC, SQL or protobuf: adapters translate
to and from these plain types.
"""
