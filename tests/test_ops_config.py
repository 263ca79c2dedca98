"""The operations keys of the llm section: defaults, validation, environment overrides."""

from __future__ import annotations

import pytest

from psicoia.config import ConfigError, load


def load_yaml(tmp_path, text: str, environ=None):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load(str(path), environ=environ or {})


def test_breaker_and_pacing_defaults_match_the_shipped_config(tmp_path):
    from pathlib import Path

    shipped = load(str(Path(__file__).resolve().parent.parent / "config.yaml"), environ={})
    defaults = load(environ={}, cwd=tmp_path)
    for key in ("breaker_failure_threshold", "breaker_cooldown_seconds",
                "breaker_cooldown_max_seconds", "pacing"):
        assert getattr(shipped.llm, key) == getattr(defaults.llm, key)
    assert (defaults.llm.breaker_failure_threshold, defaults.llm.breaker_cooldown_seconds,
            defaults.llm.pacing) == (5, 30.0, True)


@pytest.mark.parametrize("text, named", [
    ("llm: {breaker_failure_threshold: 0}", "llm.breaker_failure_threshold"),
    ("llm: {breaker_cooldown_seconds: -1}", "llm.breaker_cooldown_seconds"),
    ("llm: {breaker_cooldown_seconds: 60, breaker_cooldown_max_seconds: 30}",
     "llm.breaker_cooldown_max_seconds"),
    ("llm: {pacing: sometimes}", "llm.pacing"),
])
def test_bad_operations_keys_are_rejected_with_the_key_named(tmp_path, text, named):
    with pytest.raises(ConfigError) as raised:
        load_yaml(tmp_path, text)
    assert str(raised.value).startswith(named)


def test_operations_keys_can_be_overridden_from_the_environment(tmp_path):
    config = load_yaml(tmp_path, "llm: {pacing: true}", environ={
        "PSICOIA_LLM_PACING": "false", "PSICOIA_LLM_BREAKER_FAILURE_THRESHOLD": "2",
        "PSICOIA_LOG_FORMAT": "json"})
    assert config.llm.pacing is False
    assert config.llm.breaker_failure_threshold == 2
    assert config.log.format == "json"


def test_streaming_keys_defaults_match_the_shipped_config_and_are_checked(tmp_path):
    from pathlib import Path

    shipped = load(str(Path(__file__).resolve().parent.parent / "config.yaml"), environ={})
    defaults = load(environ={}, cwd=tmp_path)
    assert (shipped.llm.stream, shipped.llm.stream_stall_seconds) == (True, 20.0)
    assert (defaults.llm.stream, defaults.llm.stream_stall_seconds) == (True, 20.0)
    for text, named in (("llm: {stream: maybe}", "llm.stream"),
                        ("llm: {stream_stall_seconds: 0}", "llm.stream_stall_seconds")):
        with pytest.raises(ConfigError) as raised:
            load_yaml(tmp_path, text)
        assert str(raised.value).startswith(named)
    config = load_yaml(tmp_path, "llm: {stream: true}", environ={
        "PSICOIA_LLM_STREAM": "false", "PSICOIA_LLM_STREAM_STALL_SECONDS": "5"})
    assert (config.llm.stream, config.llm.stream_stall_seconds) == (False, 5.0)
