"""
Load, override and validate the configuration, once, into one frozen object.

Nothing else in PsicoIA reads the environment or the YAML file: the service is built from the
``Config`` returned by :func:`load`. Every error is a :class:`ConfigError` whose message is one
line naming the key (or file) and what is wrong, so ``twistd`` can print it and exit before
listening.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from psicoia.config.checks import ConfigError
from psicoia.config.sections import SECTIONS, Config

ENV_PREFIX = "PSICOIA_"
DEFAULT_PATH = "config.yaml"


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
