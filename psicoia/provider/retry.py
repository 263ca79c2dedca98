"""
When to retry a provider call and how long to wait: pure functions, easy to test.

Backoff doubles from ``initial`` up to ``maximum`` with "equal jitter" (half fixed, half random),
so a crowd of retries spreads out instead of hitting the provider in lockstep. A provider's own
``retry-after-ms`` / ``Retry-After`` wins over the schedule.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Callable, Mapping, Optional

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_delay(
    retry_number: int, initial: float, maximum: float, random: Callable[[], float]
) -> float:
    """Delay before retry ``retry_number`` (1 for the first retry)."""
    base = min(maximum, initial * (2 ** (retry_number - 1)))
    return base / 2 + random() * base / 2


def retry_after_seconds(headers: Mapping[str, str], now: float) -> Optional[float]:
    """
    Seconds the provider asked us to wait, from ``retry-after-ms`` or ``Retry-After``
    (delta-seconds or an HTTP date), or None when absent or unreadable.

    ``headers`` keys are lower-case; ``now`` is the clock's POSIX time.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)
