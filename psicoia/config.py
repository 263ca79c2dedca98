"""
Load, override and validate the configuration, once, into one frozen object.

Nothing else in PsicoIA reads the environment or the YAML file: the service is built from the
``Config`` returned by :func:`load`. Every error is a :class:`ConfigError` whose message is one
line naming the key (or file) and what is wrong, so ``twistd`` can print it and exit before
listening.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

import yaml
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.testing import MemoryReactor

from psicoia import texts

ENV_PREFIX = "PSICOIA_"
DEFAULT_PATH = "config.yaml"


class ConfigError(Exception):
    """A configuration problem, as one line a person can act on."""


def endpoint_problem(value: str, client: bool = False) -> Optional[str]:
    """What is wrong with an endpoint string (None: nothing), parsed the way the listener
    (or, with ``client``, the connector) will parse it, without listening or connecting."""
    parse = clientFromString if client else serverFromString
    if not client and value.startswith("haproxy:ssl:"):
        # The PROXY header comes before TLS on the wire, and would be looked for inside it.
        return ("haproxy:ssl: is not supported (the proxy's header precedes TLS); terminate "
                "TLS at the proxy and use haproxy:tcp:..., or use ssl: without the proxy")
    try:
        endpoint = parse(MemoryReactor(), value)
    except Exception as exc:  # endpoint parsers raise many types; all mean "bad string"
        return f"not a valid Twisted endpoint string ({exc.__class__.__name__}: {exc})"
    port = getattr(endpoint, "_port", None)  # TCP/SSL endpoints; only checked when listening
    if isinstance(port, int) and not 0 <= port <= 65535:
        return f"port must be 0-65535, got {port} in {value!r}"
    return None


def _non_empty(value: str) -> Optional[str]:
    return None if value.strip() else "must not be empty"


def _positive(value: Any) -> Optional[str]:
    return None if value > 0 else f"must be greater than 0, got {value!r}"


def _non_negative(value: Any) -> Optional[str]:
    return None if value >= 0 else f"must be 0 or more, got {value!r}"


def _one_of(*choices: str):
    def check(value: str) -> Optional[str]:
        return None if value in choices else f"must be one of {', '.join(choices)}; got {value!r}"

    return check


def _url(value: str) -> Optional[str]:
    if value.startswith(("http://", "https://")):
        return None
    return f"must be an http:// or https:// URL, got {value!r}"


def _origins(value: tuple) -> Optional[str]:
    """Each entry is ``*``, ``null`` or an origin ``scheme://host[:port]`` (no path)."""
    for entry in value:
        if entry in ("*", "null"):
            continue
        parts = urlsplit(entry)
        try:
            parts.port
        except ValueError:
            return f"bad port in origin {entry!r}"
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            return f"each entry must be an origin like https://chat.example.org, got {entry!r}"
    return None


def _networks(value: tuple) -> Optional[str]:
    """Each entry is an IP network in CIDR form (``10.0.0.0/8``) or a single address."""
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"each entry must be an address or CIDR network like 10.0.0.0/8, got {entry!r}"
    return None


def _proxied_endpoint(value: str) -> Optional[str]:
    if not value.startswith("haproxy:"):
        return f"must be a haproxy: endpoint string (PROXY protocol), like haproxy:tcp:5002; got {value!r}"
    return endpoint_problem(value)


def _setting(default: Any, *checks) -> Any:
    return field(default=default, metadata={"checks": checks})


@dataclass(frozen=True)
class ServerConfig:
    tcp: Optional[str] = _setting("tcp:5001", endpoint_problem)
    websocket: Optional[str] = _setting("tcp:8765", endpoint_problem)
    http: Optional[str] = _setting("tcp:8000", endpoint_problem)
    max_connections: int = _setting(10000, _positive)
    max_connections_per_ip: int = _setting(50, _positive)
    shutdown_grace_seconds: float = _setting(10.0, _non_negative)
    # Browser origins allowed on the WebSocket besides the page's own (docs/protocol.md).
    allowed_origins: tuple[str, ...] = _setting((), _origins)
    # Who may read /metrics and the details of /readyz and /healthz (docs/operations.md).
    metrics_allowed: tuple[str, ...] = _setting(("127.0.0.0/8", "::1/128"), _networks)
    # HTTP listener: the request line, headers and body must all arrive within this time.
    http_header_timeout_seconds: float = _setting(10.0, _positive)
    # HTTP listener: larger request bodies get 413 before a byte of them is read.
    http_max_body_bytes: int = _setting(1024, _non_negative)
    # A second line-protocol listener for proxies and the gateway: every connection starts
    # with a PROXY protocol header naming the real client (docs/operations.md).
    tcp_proxied: Optional[str] = _setting(None, _proxied_endpoint)
    # Peers whose X-Forwarded-For / Forwarded headers name the client (HTTP and WebSocket).
    trusted_proxies: tuple[str, ...] = _setting((), _networks)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str = _setting("https://api.groq.com/openai/v1", _url)
    model: str = _setting("llama-3.1-8b-instant")
    api_key_env: str = _setting("GROQ_API_KEY")
    temperature: float = _setting(0.5, _non_negative)
    max_tokens: int = _setting(200, _positive)
    timeout_seconds: float = _setting(30.0, _positive)
    max_retries: int = _setting(3, _non_negative)
    backoff_initial_seconds: float = _setting(0.5, _non_negative)
    backoff_max_seconds: float = _setting(5.0, _non_negative)
    retry_after_max_seconds: float = _setting(10.0, _non_negative)
    max_in_flight: int = _setting(20, _positive)
    max_waiting: int = _setting(500, _non_negative)
    # Nobody waits longer than this for a line (queue, retries, a hanging provider): then the
    # fallback answers (docs/operations.md "Limits and abuse").
    reply_deadline_seconds: float = _setting(45.0, _positive)
    system_prompt_path: Optional[str] = _setting(None)
    # Operations (docs/operations.md): circuit breaker and pacing from rate-limit headers.
    breaker_failure_threshold: int = _setting(5, _positive)
    breaker_cooldown_seconds: float = _setting(30.0, _positive)
    breaker_cooldown_max_seconds: float = _setting(300.0, _positive)
    # A call still running after this counts as a failure (0: off), so hangs open it fast.
    breaker_slow_call_seconds: float = _setting(10.0, _non_negative)
    pacing: bool = _setting(True)
    # At start, when online: GET {base_url}/models once and warn if llm.model is not listed.
    check_model: bool = _setting(True)

    @property
    def completions_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class LimitsConfig:
    rate_max_messages: int = _setting(6, _positive)
    rate_window_seconds: float = _setting(10.0, _positive)
    max_line_bytes: int = _setting(4096, _positive)
    idle_timeout_seconds: float = _setting(900.0, _positive)


@dataclass(frozen=True)
class HistoryConfig:
    max_messages: int = _setting(10, _positive)
    input_token_budget: int = _setting(1000, _positive)
    chars_per_token: float = _setting(3.0, _positive)


@dataclass(frozen=True)
class LogConfig:
    format: str = _setting("text", _one_of("text", "json"))
    level: str = _setting("info", _one_of("debug", "info", "warn", "error", "critical"))
    # false: client addresses never reach the logs (shown as "-"); per-IP caps still work.
    client_addresses: bool = _setting(True)


def _resources(value: tuple) -> Optional[str]:
    if not value:
        return "must list at least one crisis resource"
    for entry in value:
        if not entry.strip() or "\n" in entry or "\r" in entry:
            return f"each resource must be one non-empty line, got {entry!r}"
    return None


@dataclass(frozen=True)
class SafetyConfig:
    """The crisis layer (docs/safety.md). Resources are ``"label: number"`` lines, one per
    entry, no commas (the environment override splits on commas)."""

    # Tier "risk": shown with every reply to a message at risk, and by /recursos.
    resources: tuple[str, ...] = _setting(texts.CRISIS_RESOURCES_DEFAULT, _resources)
    # Tier "acute" (an act in progress or done): the emergency numbers, first in the reply.
    acute_resources: tuple[str, ...] = _setting(texts.ACUTE_RESOURCES_DEFAULT, _resources)
    # Tier "third_party" (someone else at risk): how to reach help for them.
    third_party_resources: tuple[str, ...] = _setting(texts.THIRD_PARTY_RESOURCES_DEFAULT,
                                                      _resources)
    # Tier "help" (asks for a person, a number, "ayuda"): where a person answers.
    help_resources: tuple[str, ...] = _setting(texts.HELP_RESOURCES_DEFAULT, _resources)
    # After a message at risk, this many of the next replies carry a short reminder.
    reminder_turns: int = _setting(3, _non_negative)
    # A message at risk waits at most this long for the model, then gets the resources anyway.
    crisis_reply_seconds: float = _setting(20.0, _positive)
    # The model's second opinion (psicoia/chat/second_opinion.py, docs/safety.md): "auto" when
    # a key is set, or "off"; a guard model name (None: llm.model with a short prompt); its own
    # budget, deadline, and how many of the latest user messages it reads.
    classifier: str = _setting("auto", _one_of("auto", "off"))
    classifier_model: Optional[str] = _setting(None)
    classifier_max_in_flight: int = _setting(4, _positive)
    classifier_timeout_seconds: float = _setting(4.0, _positive)
    classifier_turns: int = _setting(3, _positive)


@dataclass(frozen=True)
class StorageConfig:
    """Where conversations live, for how long, encrypted or not (docs/operations.md)."""

    backend: str = _setting("sqlite", _one_of("sqlite", "memory", "redis"))
    sqlite_path: str = _setting("psicoia.db", _non_empty)  # relative to the working directory
    redis_url: str = _setting("redis://127.0.0.1:6379/0", _non_empty)
    retention_hours: float = _setting(168.0, _positive)  # counted from the last message
    purge_interval_seconds: float = _setting(600.0, _positive)
    encryption_key_env: str = _setting("STORAGE_ENCRYPTION_KEY", _non_empty)  # a name, not a key


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
def _app_port(raw: str) -> str:
    return f"tcp:{raw.strip()}"


def _llm_url(raw: str) -> str:
    """``LLM_URL`` may be the full ``.../chat/completions`` URL or the base URL."""
    raw = raw.strip().rstrip("/")
    suffix = "/chat/completions"
    return raw[: -len(suffix)] if raw.endswith(suffix) else raw


LEGACY_ENV: dict[str, tuple[str, str, Any]] = {
    "MODEL_NAME": ("llm", "model", None),
    "LLM_URL": ("llm", "base_url", _llm_url),
    "APP_PORT": ("server", "tcp", _app_port),
    "MAX_IN_FLIGHT": ("llm", "max_in_flight", None),
    "RATE_MAX_MESSAGES": ("limits", "rate_max_messages", None),
    "RATE_WINDOW_SECONDS": ("limits", "rate_window_seconds", None),
    "LLM_TEMPERATURE": ("llm", "temperature", None),
    "LLM_MAX_TOKENS": ("llm", "max_tokens", None),
    "LLM_TIMEOUT_SECONDS": ("llm", "timeout_seconds", None),
    "LLM_MAX_RETRIES": ("llm", "max_retries", None),
    "LLM_BACKOFF_INITIAL": ("llm", "backoff_initial_seconds", None),
    "LLM_BACKOFF_MAX": ("llm", "backoff_max_seconds", None),
    "LLM_HISTORY_MAX_MESSAGES": ("history", "max_messages", None),
    "LLM_INPUT_TOKEN_BUDGET": ("history", "input_token_budget", None),
    "LLM_CHARS_PER_TOKEN": ("history", "chars_per_token", None),
}


def _field_types(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in fields(section_cls)}


def _base_type(hint: Any) -> tuple[Any, bool]:
    """Return (type, nullable) for ``T`` or ``Optional[T]`` hints."""
    args = typing.get_args(hint)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _coerce_yaml(name: str, hint: Any, value: Any) -> Any:
    kind, nullable = _base_type(hint)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{name}: must not be null")
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: must be a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: must be a string, got {value!r}")
    if typing.get_origin(kind) in (list, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{name}: must be a list of strings, got {value!r}")
    raise ConfigError(f"{name}: unsupported setting type")  # pragma: no cover


def _coerce_env(name: str, hint: Any, raw: str) -> Any:
    kind, nullable = _base_type(hint)
    text = raw.strip()
    if nullable and text.lower() in ("", "null", "none"):
        return None
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        wanted = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
        raise ConfigError(f"{name}: must be {wanted}, got {raw!r}") from None
    if typing.get_origin(kind) in (list, tuple):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return raw


def _read_file(path: Optional[str], cwd: Path) -> tuple[dict, Optional[str]]:
    if path is None:
        candidate = cwd / DEFAULT_PATH
        if not candidate.exists():
            return {}, None
        path = str(candidate)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if data is None:
        return {}, path
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (server, llm, ...)")
    return data, path


def load(
    path: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    cwd: Optional[Path] = None,
) -> Config:
    """
    Build the configuration: defaults, then the YAML file, then the environment.

    ``path`` None means ``config.yaml`` in ``cwd`` if it exists, else the built-in defaults.
    """
    environ = os.environ if environ is None else environ
    data, source = _read_file(path, cwd or Path.cwd())

    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for section, content in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(SECTIONS)})")
        if content is None:
            continue
        if not isinstance(content, dict):
            raise ConfigError(f"{section}: must be a mapping of keys")
        types = _field_types(SECTIONS[section])
        for key, value in content.items():
            if key not in types:
                raise ConfigError(f"{section}.{key}: unknown key")
            values[section][key] = _coerce_yaml(f"{section}.{key}", types[key], value)

    for env_name, (section, key, convert) in LEGACY_ENV.items():
        if env_name in environ:
            raw = environ[env_name]
            raw = convert(raw) if convert else raw
            hint = _field_types(SECTIONS[section])[key]
            values[section][key] = _coerce_env(f"{env_name} ({section}.{key})", hint, raw)

    for env_name, raw in environ.items():
        if not env_name.startswith(ENV_PREFIX):
            continue
        section, _, key = env_name[len(ENV_PREFIX):].lower().partition("_")
        types = _field_types(SECTIONS[section]) if section in SECTIONS else {}
        if key not in types:
            raise ConfigError(f"{env_name}: unknown setting (expected {ENV_PREFIX}<SECTION>_<KEY>)")
        values[section][key] = _coerce_env(f"{env_name} ({section}.{key})", types[key], raw)

    sections = {}
    for name, cls in SECTIONS.items():
        section = cls(**values[name])
        _validate(name, section)
        sections[name] = section
    _cross_checks(sections)

    api_key = environ.get(sections["llm"].api_key_env) or None
    storage_key = environ.get(sections["storage"].encryption_key_env) or None
    return Config(**sections, api_key=api_key, source=source, storage_key=storage_key)


def _validate(name: str, section: Any) -> None:
    for f in fields(section):
        value = getattr(section, f.name)
        if value is None:
            continue
        for check in f.metadata.get("checks", ()):
            problem = check(value)
            if problem:
                raise ConfigError(f"{name}.{f.name}: {problem}")


def _cross_checks(sections: dict[str, Any]) -> None:
    llm = sections["llm"]
    if llm.backoff_max_seconds < llm.backoff_initial_seconds:
        raise ConfigError(
            "llm.backoff_max_seconds: must be at least llm.backoff_initial_seconds "
            f"({llm.backoff_max_seconds} < {llm.backoff_initial_seconds})"
        )
    if llm.breaker_cooldown_max_seconds < llm.breaker_cooldown_seconds:
        raise ConfigError(
            "llm.breaker_cooldown_max_seconds: must be at least llm.breaker_cooldown_seconds "
            f"({llm.breaker_cooldown_max_seconds} < {llm.breaker_cooldown_seconds})"
        )
    if llm.system_prompt_path and not Path(llm.system_prompt_path).is_file():
        raise ConfigError(f"llm.system_prompt_path: file not found: {llm.system_prompt_path}")
    server = sections["server"]
    if server.max_connections_per_ip > server.max_connections:
        raise ConfigError(
            "server.max_connections_per_ip: must not exceed server.max_connections "
            f"({server.max_connections_per_ip} > {server.max_connections})"
        )


def replace(config: Config, **sections: dict[str, Any]) -> Config:
    """Return a copy with some keys changed, e.g. ``replace(c, llm={"max_in_flight": 3})``.

    Meant for tests and tools; values are validated like the file's.
    """
    changed = {}
    for name, updates in sections.items():
        section = dataclasses.replace(getattr(config, name), **updates)
        _validate(name, section)
        changed[name] = section
    return dataclasses.replace(config, **changed)
