"""Thin adapters between the domain core and Kafka, PostgreSQL and protobuf."""
