"""Citizen ID numbers: check digits, pseudonymous keys, masking.

ID numbers of minors are sensitive personal information: they never appear in
Kafka keys, logs or metric labels. Those carry the keyed pseudonym instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
#: ASCII digits only (re.ASCII): a full-width or other script's digit would make a second
#: spelling of the same person, that the checks would take for somebody else.
_CITIZEN_ID = re.compile(
    r"^[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]$",
    re.ASCII,
)


def citizen_id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def compose_citizen_id(region: str | int, birth: dt.date, sequence: int) -> str:
    """The ID number of these parts with its check character (generators and tests:
    the one place an ID number is made)."""
    first17 = f"{int(region):06d}{birth:%Y%m%d}{sequence % 1000:03d}"
    return first17 + citizen_id_check_char(first17)


def citizen_id_problem(value: str) -> str | None:
    """Why `value` is not a valid citizen ID number, or None when it is."""
    if len(value) != 18:
        return "must be 18 characters"
    if not value.isascii():
        return "must be written in ASCII digits (0-9) and X, not full-width or other digits"
    if not _CITIZEN_ID.match(value):
        return "must be 17 digits (region, birth date, sequence) and a check character 0-9 or X"
    if citizen_id_check_char(value[:17]) != value[17]:
        return "check digit does not match (GB 11643)"
    return None


def looks_like_citizen_id(value: str) -> bool:
    """True for a string with the shape and a valid check digit (used by privacy scans)."""
    return citizen_id_problem(value) is None


def pseudonym(secret: bytes, person_id: str) -> str:
    """A stable keyed pseudonym for a person or child: HMAC-SHA256, 32 hex chars."""
    return hmac.new(secret, person_id.encode(), hashlib.sha256).hexdigest()[:32]


#: Characters of an ID number a mask keeps: the region (known anyway: it is the alert's)
#: and the check character. What stays hidden, birth date and sequence, leaves about
#: 600,000 candidates (about 2,800 when an alert gives away the birth month), each
#: testable only by an audited, rate-limited whole-ID read (docs/privacy.md).
MASK_HEAD, MASK_TAIL = 6, 1


def mask_id(value: str) -> str:
    """The one mask of ID numbers for every output short of a whole-ID read:
    110105***********X (region and check character kept)."""
    if len(value) <= MASK_HEAD + MASK_TAIL + 4:
        return "*" * len(value)
    return value[:MASK_HEAD] + "*" * (len(value) - MASK_HEAD - MASK_TAIL) + value[-MASK_TAIL:]


#: The shape of an ID number inside free text (no check digit required: a mistyped
#: number is still somebody's), after NFKC folding so full-width digits match too.
_ID_INSIDE = re.compile(
    r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
    r"[\dXx](?!\d)"
)


def _folded(text: str) -> str:
    # ASCII is its own NFKC form: most strings skip the normalisation.
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def holds_id_shape(text: str) -> bool:
    """True when free text (a note, a reason, a name) carries something shaped like an ID
    number: such text would put the number where masks and audits cannot follow it."""
    return _ID_INSIDE.search(_folded(text)) is not None


def ids_inside(text: str) -> list[str]:
    """The ID-shaped substrings of `text` (NFKC-folded), in order."""
    return _ID_INSIDE.findall(_folded(text))


def mask_ids_inside(text: str) -> str:
    """`text` with every ID-shaped substring masked (unchanged when there is none)."""
    folded = _folded(text)
    if _ID_INSIDE.search(folded) is None:
        return text
    return _ID_INSIDE.sub(lambda m: mask_id(m.group()), folded)


def redact_ids_in_bytes(data: bytes) -> bytes:
    """`data` (a record that could not be read, a key) with every ID-shaped run of
    characters overwritten by '*', byte for byte, so the dead letter keeps its length and
    layout (a protobuf stays parseable) but holds no ID number. Full-width digits count."""
    text = data.decode("utf-8", "surrogateescape")
    chars = list(text)
    folded = "".join(
        f if len(f := unicodedata.normalize("NFKC", c)) == 1 else c for c in chars
    ) if not text.isascii() else text
    spans = [m.span() for m in _ID_INSIDE.finditer(folded)]
    if not spans:
        return data
    for start, end in spans:
        for i in range(start, end):
            chars[i] = "*" * len(chars[i].encode("utf-8", "surrogateescape"))
    return "".join(chars).encode("utf-8", "surrogateescape")
