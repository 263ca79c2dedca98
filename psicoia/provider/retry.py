"""
When to retry a provider call and how long to wait: pure functions, easy to test.

Backoff doubles from ``initial`` up to ``maximum`` with "equal jitter" (half fixed, half random),
so a crowd of retries spreads out instead of hitting the provider in lockstep. A provider's own
``retry-after-ms`` / ``Retry-After`` (plain or with a gateway's ``llm_provider-`` prefix) wins
over the schedule, except on a concurrency refusal (psicoia.provider.concurrency).
"""

from __future__ import annotations

from typing import Callable

# Parsed with every other header form in psicoia.provider.headers; re-exported here, where the
# retry policy reads it.
from psicoia.provider.headers import retry_after_seconds

__all__ = ["RETRYABLE_STATUSES", "backoff_delay", "is_retryable_status", "retry_after_seconds"]

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_delay(
    retry_number: int, initial: float, maximum: float, random: Callable[[], float]
) -> float:
    """Delay before retry ``retry_number`` (1 for the first retry)."""
    base = min(maximum, initial * (2 ** (retry_number - 1)))
    return base / 2 + random() * base / 2
