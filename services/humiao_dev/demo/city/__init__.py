"""A seeded synthetic city: an honest allowance history, injected irregularities, and the
ground truth (which alerts DESIGN.md section 5 says the facts imply).

Pure domain: plain dataclasses in, domain envelopes out (`write_city` alone touches the
protobuf codec, lazily). The same config always gives the same city, byte for byte.

The builder reads by life event: `core` (identities, events, money, the population),
`honest` (life events that change the facts and the payments with them), `irregular`
(injected irregularities, each an expected alert), `corrected` (honest errors corrected
late), `builder` (placing the stories and emitting every child), `files` (shuffling and
writing).

How the truth is kept unambiguous:

- Each child carries at most one *story* (an honest life event, an injected irregularity,
  or an honest error corrected later), so no payment has two reasons to be wrong.
- Dates stay away from the boundaries the design leaves open: payments are made on days
  1-5, life events happen on days 5-25, guardian changes on days 10-25, a schooling
  extension runs to a month's last day, and a payment after an ending event is at least
  a whole month after it. Injected payments are right in every respect but one.
- The honest history pays every payable month of every enrolled child exactly once,
  with the standard amount, to the guardian in force; so it implies no alert.
- Honest errors (a payment made twice, a wrong amount, a death or enrollment end recorded
  by mistake, a payment made before an orphan's parent turned up) are corrected by
  reversals and retractions that arrive *late* (the `corrections` list, recorded after the
  horizon): before them the facts imply `before_corrections`, after them `truth`. The
  demo feeds them in two steps so every withdrawal is visible and deterministic.
"""

from humiao_dev.demo.city.builder import History, generate_city, history
from humiao_dev.demo.city.files import (
    CityFiles,
    load_truth,
    shuffled,
    truth_document,
    write_city,
    write_envelopes,
)
from humiao_dev.demo.city.model import (
    CORRECTIONS,
    DEFAULT_REGIONS,
    DEFAULT_SOURCE,
    INJECTIONS,
    City,
    CityConfig,
    ExpectedAlert,
)

__all__ = [
    "CORRECTIONS", "DEFAULT_REGIONS", "DEFAULT_SOURCE", "INJECTIONS", "City", "CityConfig",
    "CityFiles", "ExpectedAlert", "History", "generate_city", "history", "load_truth",
    "shuffled", "truth_document", "write_city", "write_envelopes",
]
