"""
The configuration's sections: frozen dataclasses whose fields are the keys, with their defaults
and checks (``config.yaml`` lists the same keys with comments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from psicoia import texts
from psicoia.config.checks import (
    endpoint_problem,
    networks,
    non_empty,
    non_negative,
    one_of,
    origins,
    positive,
    proxied_endpoint,
    redis_url,
    resource_lines,
    url,
)


def _setting(default: Any, *checks) -> Any:
    return field(default=default, metadata={"checks": checks})


@dataclass(frozen=True)
class ServerConfig:
    tcp: Optional[str] = _setting("tcp:5001", endpoint_problem)
    websocket: Optional[str] = _setting("tcp:8765", endpoint_problem)
    http: Optional[str] = _setting("tcp:8000", endpoint_problem)
    max_connections: int = _setting(10000, positive)
    max_connections_per_ip: int = _setting(50, positive)
    shutdown_grace_seconds: float = _setting(10.0, non_negative)
    # Browser origins allowed on the WebSocket besides the page's own (docs/protocol.md).
    allowed_origins: tuple[str, ...] = _setting((), origins)
    # Who may read /metrics and the details of /readyz and /healthz (docs/operations.md).
    metrics_allowed: tuple[str, ...] = _setting(("127.0.0.0/8", "::1/128"), networks)
    # HTTP listener: the request line, headers and body must all arrive within this time.
    http_header_timeout_seconds: float = _setting(10.0, positive)
    # HTTP listener: larger request bodies get 413 before a byte of them is read.
    http_max_body_bytes: int = _setting(1024, non_negative)
    # A second line-protocol listener for proxies and the gateway: every connection starts
    # with a PROXY protocol header naming the real client (docs/operations.md).
    tcp_proxied: Optional[str] = _setting(None, proxied_endpoint)
    # Peers whose X-Forwarded-For / Forwarded headers name the client (HTTP and WebSocket).
    trusted_proxies: tuple[str, ...] = _setting((), networks)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str = _setting("https://api.groq.com/openai/v1", url)
    model: str = _setting("llama-3.1-8b-instant")
    api_key_env: str = _setting("GROQ_API_KEY")
    temperature: float = _setting(0.5, non_negative)
    max_tokens: int = _setting(200, positive)
    timeout_seconds: float = _setting(30.0, positive)
    max_retries: int = _setting(3, non_negative)
    backoff_initial_seconds: float = _setting(0.5, non_negative)
    backoff_max_seconds: float = _setting(5.0, non_negative)
    retry_after_max_seconds: float = _setting(10.0, non_negative)
    max_in_flight: int = _setting(20, positive)
    max_waiting: int = _setting(500, non_negative)
    # Nobody waits longer than this for a line (queue, retries, a hanging provider): then the
    # fallback answers (docs/operations.md "Limits and abuse").
    reply_deadline_seconds: float = _setting(45.0, positive)
    system_prompt_path: Optional[str] = _setting(None)
    # Operations (docs/operations.md): circuit breaker and pacing from rate-limit headers.
    breaker_failure_threshold: int = _setting(5, positive)
    breaker_cooldown_seconds: float = _setting(30.0, positive)
    breaker_cooldown_max_seconds: float = _setting(300.0, positive)
    # A call still running after this counts as a failure (0: off), so hangs open it fast.
    breaker_slow_call_seconds: float = _setting(10.0, non_negative)
    pacing: bool = _setting(True)
    # At start, when online: GET {base_url}/models once and warn if llm.model is not listed.
    check_model: bool = _setting(True)
    # Streaming (CONTRACT.md "Streaming"): ask for server-sent events; a stream silent for
    # longer than this after its first token has failed.
    stream: bool = _setting(True)
    stream_stall_seconds: float = _setting(20.0, positive)

    @property
    def completions_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class LimitsConfig:
    rate_max_messages: int = _setting(6, positive)
    rate_window_seconds: float = _setting(10.0, positive)
    max_line_bytes: int = _setting(4096, positive)
    idle_timeout_seconds: float = _setting(900.0, positive)


@dataclass(frozen=True)
class HistoryConfig:
    max_messages: int = _setting(10, positive)
    input_token_budget: int = _setting(1000, positive)
    chars_per_token: float = _setting(3.0, positive)


@dataclass(frozen=True)
class LogConfig:
    format: str = _setting("text", one_of("text", "json"))
    level: str = _setting("info", one_of("debug", "info", "warn", "error", "critical"))
    # false: client addresses never reach the logs (shown as "-"); per-IP caps still work.
    client_addresses: bool = _setting(True)


@dataclass(frozen=True)
class SafetyConfig:
    """The crisis layer (docs/safety.md). Resources are ``"label: number"`` lines, one per
    entry, no commas (the environment override splits on commas)."""

    # Tier "risk": shown with every reply to a message at risk, and by /recursos.
    resources: tuple[str, ...] = _setting(texts.CRISIS_RESOURCES_DEFAULT, resource_lines)
    # Tier "acute" (an act in progress or done): the emergency numbers, first in the reply.
    acute_resources: tuple[str, ...] = _setting(texts.ACUTE_RESOURCES_DEFAULT, resource_lines)
    # Tier "third_party" (someone else at risk): how to reach help for them.
    third_party_resources: tuple[str, ...] = _setting(texts.THIRD_PARTY_RESOURCES_DEFAULT,
                                                      resource_lines)
    # Tier "help" (asks for a person, a number, "ayuda"): where a person answers.
    help_resources: tuple[str, ...] = _setting(texts.HELP_RESOURCES_DEFAULT, resource_lines)
    # After a message at risk, this many of the next replies carry a short reminder.
    reminder_turns: int = _setting(3, non_negative)
    # A message at risk waits at most this long for the model, then gets the resources anyway.
    crisis_reply_seconds: float = _setting(20.0, positive)
    # The model's second opinion (psicoia/chat/second_opinion.py, docs/safety.md): "auto" when
    # a key is set, or "off"; a guard model name (None: llm.model with a short prompt); its own
    # budget, deadline, and how many of the latest user messages it reads.
    classifier: str = _setting("auto", one_of("auto", "off"))
    classifier_model: Optional[str] = _setting(None)
    classifier_max_in_flight: int = _setting(4, positive)
    classifier_timeout_seconds: float = _setting(4.0, positive)
    classifier_turns: int = _setting(3, positive)


@dataclass(frozen=True)
class StorageConfig:
    """Where conversations live, for how long, encrypted or not (docs/operations.md)."""

    backend: str = _setting("sqlite", one_of("sqlite", "memory", "redis"))
    sqlite_path: str = _setting("psicoia.db", non_empty)  # relative to the working directory
    redis_url: str = _setting("redis://127.0.0.1:6379/0", non_empty, redis_url)
    retention_hours: float = _setting(168.0, positive)  # counted from the last message
    purge_interval_seconds: float = _setting(600.0, positive)
    encryption_key_env: str = _setting("STORAGE_ENCRYPTION_KEY", non_empty)  # a name, not a key
    # Redis backend (docs/operations.md, "Several instances"): a provider slot's lease, renewed
    # while the call runs; the slots one instance uses alone while Redis is unreachable
    # (0: half of llm.max_in_flight, at least 1).
    lease_seconds: float = _setting(10.0, positive)
    local_share: int = _setting(0, non_negative)


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "llm": LLMConfig,
    "limits": LimitsConfig,
    "history": HistoryConfig,
    "log": LogConfig,
    "safety": SafetyConfig,
    "storage": StorageConfig,
}


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    log: LogConfig = field(default_factory=LogConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    # Read from the environment variable named by llm.api_key_env; never from the file.
    api_key: Optional[str] = field(default=None, repr=False)
    source: Optional[str] = None
    # Read from the variable named by storage.encryption_key_env (psicoia.storage.crypto).
    storage_key: Optional[str] = field(default=None, repr=False)

    @property
    def offline(self) -> bool:
        return not self.api_key


# The original project's .env names: name -> (section, key, converter from the raw string).
