"""The verifier's own settings (the shared ones are in humiao.config); every variable is
documented in docs/configuration.md."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from humiao.adapters.progress import DEFAULT_GROUP


class VerifierSettings(BaseSettings):
    """The verifier's own knobs."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    humiao_verifier_group: str = DEFAULT_GROUP
    #: Records per micro-batch at most. Batches are only this big when records wait (a
    #: backlog or replay): each child is then evaluated once per batch, not per record.
    humiao_verifier_batch_max: int = Field(default=100_000, ge=1, le=200_000)
    #: How long a batch waits for more records once the first arrived (a backlog on the
    #: broker fills the batch instead: consumer.ConsumerLoop._poll).
    humiao_verifier_linger_ms: int = Field(default=50, ge=0, le=10_000)
    #: Consumer-group session timeout: how soon a dead member's partitions move.
    humiao_verifier_session_timeout_ms: int = Field(default=10_000, ge=1000)
    humiao_verifier_outbox_batch: int = Field(default=1000, ge=1)
    #: Decoded facts kept in memory (by event id) so reloaded facts are not decoded again.
    humiao_verifier_decoded_cache: int = Field(default=200_000, ge=0)
    #: Children whose facts are kept in memory (memory.py); 0 turns the working set off.
    humiao_verifier_cached_children: int = Field(default=100_000, ge=0)
    #: Facts (envelopes) held across cached children at most, the bound that tracks
    #: memory (~1 KB each); least recently used children go first. 0 turns the set off.
    humiao_verifier_cached_facts: int = Field(default=2_000_000, ge=0)
    #: Seconds between full garbage collections, each a pause of seconds (collector.py);
    #: the collector otherwise runs between batches and what survives is frozen. 0:
    #: CPython's automatic collector, with raised thresholds.
    humiao_verifier_gc_full_seconds: int = Field(default=10_800, ge=0)
    #: Optional per-region policy file (TOML); unset: the built-in defaults.
    humiao_policy_file: str | None = None
