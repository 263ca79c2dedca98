"""
``build_core``: the one place the chat core is wired, for the service, the bench and the tests.

It composes top-down: the provider (client, pacing, breaker), the conversation store, the
provider slots, and the :class:`~psicoia.chat.session.SessionManager` that uses them. Each piece
can be handed in instead (tests pass fakes of the ports, or the real pieces on a Clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from psicoia.chat.ports import IConversationStore, IProvider, ISharedHealth, ISharedState
from psicoia.chat.manager import TEMPORARY_NUMBERS, SessionManager
from psicoia.chat.second_opinion import SecondOpinion
from psicoia.config import Config
from psicoia.ops.instruments import Instruments
from psicoia.provider.breaker import CircuitBreaker
from psicoia.provider.client import ChatProvider, make_http_client
from psicoia.provider.pacing import Pacer
from psicoia.storage.memory import LocalSlots, MemoryStore
from psicoia.storage.redis_backend import RedisBackend


@dataclass
class Core:
    """What ``build_core`` made: the manager, and what the service must start and stop."""

    manager: SessionManager
    breaker: Optional[CircuitBreaker]
    pool: Any  # the HTTP connection pool to close at shutdown, if we made one
    redis: Optional[RedisBackend] = None  # storage.backend: redis (closed at shutdown)


def build_provider(config: Config, reactor: Any, clock: Any, instruments: Instruments,
                   http: Any = None,
                   shared: Optional[ISharedHealth] = None) -> tuple[CircuitBreaker, Any]:
    """The provider as the core sees it: the client behind pacing and a circuit breaker.
    ``shared``: the provider health the instances share (Redis), or None (this process only)."""
    pool = None
    if http is None and config.api_key:
        http, pool = make_http_client(reactor, config.llm.max_in_flight)
    pacer = None
    if config.llm.pacing:
        pacer = Pacer(clock, config.llm.retry_after_max_seconds, instruments,
                      max_reset_seconds=config.llm.breaker_cooldown_max_seconds,
                      shared=shared)
    client = ChatProvider(config.llm, config.api_key, clock, http, instruments, pacer=pacer)
    breaker = CircuitBreaker(client, clock, config.llm.breaker_failure_threshold,
                             config.llm.breaker_cooldown_seconds,
                             config.llm.breaker_cooldown_max_seconds, instruments,
                             slow_call_seconds=config.llm.breaker_slow_call_seconds,
                             shared=shared)
    return breaker, pool


def build_core(config: Config, reactor: Any, clock: Any = None,
               instruments: Optional[Instruments] = None, http: Any = None,
               provider: Optional[IProvider] = None,
               store: Optional[IConversationStore] = None,
               slots: Optional[ISharedState] = None,
               system_prompt: Optional[str] = None) -> Core:
    """Wire the core from ``config``.

    ``http`` replaces the treq client under the real provider; ``provider`` replaces the
    provider altogether (then no breaker is made); ``clock`` defaults to ``reactor``.
    """
    clock = clock or reactor
    instruments = instruments or Instruments()
    redis = None
    if store is None and slots is None and config.storage.backend == "redis":
        redis = RedisBackend.open(config, clock, instruments)
        store, slots = redis.store, redis.slots
    breaker, pool = None, None
    if provider is None:
        breaker, pool = build_provider(config, reactor, clock, instruments, http,
                                       shared=redis.shared_health if redis else None)
        provider = breaker
    # The second opinion asks the client itself, not the breaker: a wrong guard-model name
    # must not open the chat's breaker (docs/safety.md).
    second_opinion = None
    if config.safety.classifier != "off":
        client = breaker.provider if breaker is not None else provider
        second_opinion = SecondOpinion(client, config.safety, clock)
    if store is None:
        store = MemoryStore()
    if slots is None:
        slots = LocalSlots(config.llm.max_in_flight, config.llm.max_waiting,
                           instruments.semaphore_changed)
    manager = SessionManager(config, provider, clock, store, slots,
                             resume_throttle=redis.throttle if redis else None,
                             instruments=instruments,
                             system_prompt=system_prompt, second_opinion=second_opinion,
                             fallback=MemoryStore(first_number=TEMPORARY_NUMBERS))
    if redis is not None:
        redis.on_claimed(manager.evict)
    return Core(manager, breaker, pool, redis)
