"""
Hooks the service calls when something countable happens.

The base class does nothing; the metrics module provides an implementation that feeds
Prometheus. Callers pass labels (transports, outcomes, statuses), never message content.
"""

from __future__ import annotations


class Instruments:
    """No-op instruments: the default, and the base for real ones."""

    def connection_opened(self, transport: str) -> None:
        pass

    def connection_closed(self, transport: str) -> None:
        pass

    def connection_refused(self, transport: str, reason: str) -> None:
        pass

    def message_handled(self, transport: str, outcome: str) -> None:
        pass

    def queue_wait(self, seconds: float) -> None:
        pass

    def semaphore_changed(self, in_flight: int, waiting: int) -> None:
        pass

    def reply_ready(self, transport: str, seconds: float) -> None:
        """A message got its reply ``seconds`` after it arrived (what the user waited)."""

    def provider_configured(self, online: bool) -> None:
        """At start: whether a key is configured (model replies) or the service is offline."""

    def idle_timeout(self, transport: str) -> None:
        """A connection was closed for being idle (limits.idle_timeout_seconds)."""

    def websocket_closed(self, code: "int | None") -> None:
        """A WebSocket connection closed with this close code (None: no code)."""

    def provider_attempt(self, result: str, seconds: float) -> None:
        """``result`` is an HTTP status as text ("200", "503") or an error name ("timeout")."""

    def provider_retry(self) -> None:
        pass

    def crisis_detected(self, transport: str) -> None:
        """A message got crisis resources: tier acute, risk or third_party (counted, never stored)."""

    def breaker_changed(self, state: str) -> None:
        """The provider circuit breaker moved to ``closed``, ``open`` or ``half_open``."""

    def provider_paced(self, seconds: float) -> None:
        """A call waited ``seconds`` for the provider's rate-limit budget (psicoia.provider.pacing)."""

    def provider_quota(self, kind: str, remaining: int) -> None:
        """The provider reported ``remaining`` ``requests`` or ``tokens`` in its headers."""

    def provider_rejected(self, kind: str) -> None:
        """The provider refused a call for a known reason: ``auth``, ``model``, ``endpoint``
        or ``concurrency`` (psicoia.provider.diagnosis)."""

    def provider_problem(self, kind: "str | None") -> None:
        """The operator problem the provider keeps reporting (``auth``, ``model``,
        ``endpoint``), or None once a call succeeds again."""

    def provider_concurrency(self, limit: int) -> None:
        """Requests the client now sends the provider at once (psicoia.provider.concurrency)."""

    def storage_changed(self, state: str, reason: str) -> None:
        """The conversation store became ``ok`` or ``degraded``; ``reason`` is the fault
        (``locked``, ``full``, ``unwritable``, ``corrupt``, ``io``, ``wrong_key``,
        ``newer_schema``) or ""."""

    def provider_first_token(self, seconds: float) -> None:
        """A streamed reply showed its first visible text ``seconds`` after the call began
        (retries and pacing included)."""

    def provider_stream(self, chunks: int, seconds: float) -> None:
        """A streamed attempt ended after ``chunks`` data events, ``seconds`` from its first
        token to its last chunk."""
