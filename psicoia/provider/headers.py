"""
Reading the time hints and ids providers and gateways put in response headers: pure functions.

Every function takes the response headers as a mapping of **lower-case** names to their last
value (``client.response_headers``) and, where a time is involved, ``now``: the clock's POSIX
time in seconds. Nothing here trusts a value blindly: unreadable, negative, infinite or NaN
values read as None (absent), and callers cap long ones.

Forms seen in the field (docs/operations.md, "Running behind a gateway"):

- names: OpenAI and Groq send ``retry-after``, ``retry-after-ms``, ``x-ratelimit-*``; the LiteLLM
  proxy relays the upstream's headers with an ``llm_provider-`` prefix
  (``llm_provider-retry-after``, ``llm_provider-x-ratelimit-reset-requests``). The plain name
  wins; the prefixed one is read only when the plain one is absent.
- resets (``x-ratelimit-reset-*``): Go durations (``1m2.5s``, ``250ms``, ``7.66s``), plain
  seconds (``2``), Unix timestamps in seconds (``1700000060``) or milliseconds
  (``1700000060000``), HTTP dates, ISO 8601 times.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping, Optional

GATEWAY_PREFIX = "llm_provider-"

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")

# A bare number above these is not a duration but a point in time. 1e9 s is 2001-09-09: no
# provider asks for a 31-year wait, and no Unix time in seconds is below it any more.
_EPOCH_SECONDS = 1e9
_EPOCH_MILLISECONDS = 1e12

# The gateway's own id first: when there is one, it is the log an operator must match.
_REQUEST_ID_HEADERS = ("x-litellm-call-id", "x-request-id", "request-id")
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def header(headers: Mapping[str, str], name: str) -> Optional[str]:
    """The value of ``name`` (lower-case), or of ``llm_provider-name`` when ``name`` is absent."""
    value = headers.get(name)
    if value is None:
        value = headers.get(GATEWAY_PREFIX + name)
    return value


def _finite(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def parse_duration(text: Optional[str]) -> Optional[float]:
    """Seconds in a Go-style duration (``6m0s``, ``250ms``, ``2m59.56s``; a bare number is
    seconds), or None when it cannot be read (or is negative, infinite, NaN)."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return _finite(value) if value >= 0 else None
    total, position = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return _finite(total) if position == len(text) else None


def _date(text: str) -> Optional[datetime]:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when


def seconds_until(text: Optional[str], now: float) -> Optional[float]:
    """Seconds from ``now`` until a reset given in any of the forms above, or None.

    A bare number is a duration in seconds, unless it is large enough to be a Unix time
    (above 1e9: seconds; above 1e12: milliseconds), which is read as that time. A time already
    past reads as 0.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number) or number < 0:
            return None
        if number >= _EPOCH_MILLISECONDS:
            return max(0.0, number / 1000.0 - now)
        if number >= _EPOCH_SECONDS:
            return max(0.0, number - now)
        return number
    duration = parse_duration(text)
    if duration is not None:
        return duration
    when = _date(text)
    if when is None:
        return None
    return _finite(max(0.0, when.timestamp() - now))


def retry_after_seconds(headers: Mapping[str, str], now: float) -> Optional[float]:
    """Seconds the provider asked us to wait, or None when it did not say (readably).

    ``retry-after-ms`` wins over ``Retry-After`` (delta-seconds or an HTTP date); each is read
    plain first, then with the gateway prefix. Not capped: the caller decides what is too long.
    """
    raw_ms = header(headers, "retry-after-ms")
    if raw_ms is not None:
        milliseconds = parse_duration(raw_ms)
        if milliseconds is not None:
            return milliseconds / 1000.0
    raw = header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        number = float(raw)
    except ValueError:
        number = None
    if number is not None:  # delta-seconds; a negative one means "now"
        return max(0.0, number) if math.isfinite(number) else None
    when = _date(raw)
    if when is None:
        return None
    return _finite(max(0.0, when.timestamp() - now))


def ratelimit(headers: Mapping[str, str], kind: str, now: float
              ) -> tuple[Optional[int], Optional[float]]:
    """``(remaining, seconds_until_reset)`` for ``kind`` (``requests`` or ``tokens``) from the
    ``x-ratelimit-*`` headers (plain or gateway-prefixed); each None when absent or unreadable.
    """
    raw = header(headers, f"x-ratelimit-remaining-{kind}")
    remaining: Optional[int] = None
    if raw is not None:
        try:
            value = float(raw.strip())
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            remaining = max(0, int(value))
    return remaining, seconds_until(header(headers, f"x-ratelimit-reset-{kind}"), now)


def safe_id(value: object) -> Optional[str]:
    """``value`` if it is a plain id (``[A-Za-z0-9_.:-]``, 1 to 100 characters), else None."""
    if isinstance(value, str) and _SAFE_ID.fullmatch(value):
        return value
    return None


def request_id(headers: Mapping[str, str], body_id: object = None) -> Optional[str]:
    """The provider's id for this request, for matching its logs to ours: ``x-litellm-call-id``
    (LiteLLM), ``x-request-id`` (OpenAI, Groq), else the body's ``id``; only if it looks
    like an id (:func:`safe_id`), never free text."""
    for name in _REQUEST_ID_HEADERS:
        found = safe_id(header(headers, name))
        if found is not None:
            return found
    return safe_id(body_id)


def gateway_retries(headers: Mapping[str, str]) -> int:
    """How many times a gateway says it retried upstream for this answer
    (``x-litellm-attempted-retries``); 0 when it does not say."""
    raw = headers.get("x-litellm-attempted-retries")
    try:
        return max(0, int(raw.strip())) if raw is not None else 0
    except ValueError:
        return 0
