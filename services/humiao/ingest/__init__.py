"""The ingest gateway: upstream systems submit envelopes; each is validated, checked
against the source's credential, deduplicated by eventId and published to Kafka."""
