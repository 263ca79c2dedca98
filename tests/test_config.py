"""
Configuration: defaults, the YAML file, environment overrides, and one-line errors.

Every ConfigError must be one line that names the key (or the file) and what is wrong: that
line is all an operator sees when twistd refuses to start (tests/test_launch.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from psicoia import config
from psicoia.config import ConfigError, load

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(tmp_path, text=None, environ=None, path=None) -> str:
    if text is not None:
        path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path, environ=environ or {}, cwd=tmp_path)
    message = str(raised.value)
    assert "\n" not in message, "one line"
    return message


# --- defaults and the shipped file ------------------------------------------------------------

def test_the_shipped_config_yaml_equals_the_built_in_defaults(tmp_path):
    shipped = load(str(REPO / "config.yaml"), environ={})
    defaults = load(None, environ={}, cwd=tmp_path)
    assert defaults.source is None
    assert dataclasses.replace(shipped, source=None) == defaults


def test_the_shipped_config_yaml_has_every_key_of_every_section():
    import yaml

    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    for name, cls in config.SECTIONS.items():
        assert set(data[name]) == {f.name for f in dataclasses.fields(cls)}, name


def test_contract_defaults(tmp_path):
    c = load(None, environ={}, cwd=tmp_path)
    assert (c.server.tcp, c.server.websocket, c.server.http) == ("tcp:5001", "tcp:8765", "tcp:8000")
    assert (c.server.max_connections, c.server.max_connections_per_ip) == (10000, 50)
    assert c.llm.completions_url == "https://api.groq.com/openai/v1/chat/completions"
    assert (c.llm.model, c.llm.api_key_env) == ("llama-3.1-8b-instant", "GROQ_API_KEY")
    assert (c.llm.max_in_flight, c.llm.max_waiting, c.llm.max_retries) == (20, 500, 3)
    assert (c.limits.rate_max_messages, c.limits.rate_window_seconds) == (6, 10)
    assert (c.limits.max_line_bytes, c.limits.idle_timeout_seconds) == (4096, 900)
    assert (c.history.max_messages, c.history.input_token_budget) == (10, 1000)
    assert (c.log.format, c.log.level) == ("text", "info")
    assert c.offline and c.api_key is None


def test_without_a_path_config_yaml_in_the_working_directory_is_read(tmp_path):
    write(tmp_path, "llm:\n  model: desde-cwd\n")
    c = load(None, environ={}, cwd=tmp_path)
    assert c.llm.model == "desde-cwd"
    assert c.source == str(tmp_path / "config.yaml")


def test_an_empty_file_or_empty_section_means_defaults(tmp_path):
    assert load(write(tmp_path, ""), environ={}).llm.model == "llama-3.1-8b-instant"
    assert load(write(tmp_path, "llm:\n"), environ={}).llm.model == "llama-3.1-8b-instant"


def test_null_disables_a_listener(tmp_path):
    c = load(write(tmp_path, "server:\n  websocket: null\n  http: null\n"), environ={})
    assert (c.server.websocket, c.server.http) == (None, None)


def test_the_config_is_immutable(tmp_path):
    c = load(None, environ={}, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.llm.model = "x"


def test_the_key_is_read_from_the_named_variable_and_never_shown(tmp_path):
    c = load(write(tmp_path, "llm:\n  api_key_env: MY_KEY\n"),
             environ={"MY_KEY": "sk-secret", "GROQ_API_KEY": "other"})
    assert c.api_key == "sk-secret" and not c.offline
    assert "sk-secret" not in repr(c)


def test_an_empty_key_means_offline(tmp_path):
    assert load(None, environ={"GROQ_API_KEY": ""}, cwd=tmp_path).offline


# --- errors: one line naming the key or file --------------------------------------------------

@pytest.mark.parametrize("text, names, says", [
    ("servr:\n  tcp: 'tcp:1'\n", "servr", "unknown section"),
    ("server:\n  tpc: 'tcp:1'\n", "server.tpc", "unknown key"),
    ("llm:\n  max_in_flight: lots\n", "llm.max_in_flight", "whole number"),
    ("llm:\n  max_tokens: 2.5\n", "llm.max_tokens", "whole number"),
    ("llm:\n  temperature: warm\n", "llm.temperature", "number"),
    ("llm:\n  model: 7\n", "llm.model", "string"),
    ("llm:\n  pacing: sometimes\n", "llm.pacing", "true or false"),
    ("llm:\n  max_in_flight: true\n", "llm.max_in_flight", "whole number"),
    ("llm:\n  model: null\n", "llm.model", "null"),
    ("limits:\n  rate_max_messages: -1\n", "limits.rate_max_messages", "greater than 0"),
    ("limits:\n  max_line_bytes: 0\n", "limits.max_line_bytes", "greater than 0"),
    ("limits:\n  idle_timeout_seconds: -5\n", "limits.idle_timeout_seconds", "greater than 0"),
    ("llm:\n  max_waiting: -1\n", "llm.max_waiting", "0 or more"),
    ("llm:\n  max_retries: -1\n", "llm.max_retries", "0 or more"),
    ("server:\n  max_connections: 0\n", "server.max_connections", "greater than 0"),
    ("server:\n  tcp: 'tcp:notaport'\n", "server.tcp", "endpoint"),
    ("server:\n  http: 'carrier-pigeon:80'\n", "server.http", "endpoint"),
    ("server:\n  websocket: 'tcp:70000'\n", "server.websocket", "0-65535"),
    ("llm:\n  base_url: 'ftp://example.org'\n", "llm.base_url", "http"),
    ("log:\n  level: loud\n", "log.level", "one of"),
    ("llm:\n  backoff_initial_seconds: 9\n  backoff_max_seconds: 1\n",
     "llm.backoff_max_seconds", "at least"),
    ("llm:\n  system_prompt_path: /nonexistent/prompt.txt\n", "llm.system_prompt_path",
     "not found"),
    ("server: 5\n", "server", "mapping"),
])
def test_each_bad_value_is_one_line_naming_the_key(tmp_path, text, names, says):
    message = error_of(tmp_path, text)
    assert message.startswith(names + ":"), message
    assert says in message


def test_a_missing_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    message = error_of(tmp_path, path=missing)
    assert message.startswith(missing) and "not found" in message


def test_bad_yaml_is_named_with_the_line(tmp_path):
    message = error_of(tmp_path, "server:\n  tcp: 'tcp:1'\n  oops: [unclosed\n")
    assert message.startswith(str(tmp_path / "config.yaml")) and "YAML" in message
    assert "line" in message


def test_a_file_that_is_not_a_mapping_is_named(tmp_path):
    message = error_of(tmp_path, "- just\n- a list\n")
    assert message.startswith(str(tmp_path / "config.yaml")) and "mapping" in message


# --- environment overrides --------------------------------------------------------------------

def test_psicoia_section_key_variables_override_the_file(tmp_path):
    path = write(tmp_path, "llm:\n  model: from-file\nlimits:\n  rate_max_messages: 2\n")
    c = load(path, environ={"PSICOIA_LLM_MODEL": "from-env",
                            "PSICOIA_LIMITS_RATE_MAX_MESSAGES": "9",
                            "PSICOIA_LLM_TEMPERATURE": "0.9",
                            "PSICOIA_LLM_PACING": "false",
                            "PSICOIA_SERVER_HTTP": "null",
                            "PSICOIA_LLM_API_KEY_ENV": "OTHER_KEY",
                            "OTHER_KEY": "k"})
    assert c.llm.model == "from-env"
    assert c.limits.rate_max_messages == 9
    assert c.llm.temperature == 0.9
    assert c.llm.pacing is False
    assert c.server.http is None
    assert c.api_key == "k"


@pytest.mark.parametrize("environ, names", [
    ({"PSICOIA_LIMITS_RATE_MAX_MESSAGES": "many"}, "PSICOIA_LIMITS_RATE_MAX_MESSAGES"),
    ({"PSICOIA_LIMITS_RATE_MAX_MESSAGES": "0"}, "limits.rate_max_messages"),
    ({"PSICOIA_LLM_MODLE": "x"}, "PSICOIA_LLM_MODLE"),
    ({"PSICOIA_NOPE_X": "x"}, "PSICOIA_NOPE_X"),
    ({"RATE_MAX_MESSAGES": "six"}, "RATE_MAX_MESSAGES"),
    ({"APP_PORT": "http"}, "server.tcp"),
    ({"LLM_URL": "not a url"}, "llm.base_url"),
])
def test_a_bad_environment_value_is_one_line_naming_the_variable_or_key(tmp_path, environ, names):
    message = error_of(tmp_path, environ=environ)
    assert names in message


@pytest.mark.parametrize("name, raw, section, key, value", [
    ("MODEL_NAME", "llama-3.3-70b-versatile", "llm", "model", "llama-3.3-70b-versatile"),
    ("APP_PORT", "6001", "server", "tcp", "tcp:6001"),
    ("MAX_IN_FLIGHT", "7", "llm", "max_in_flight", 7),
    ("RATE_MAX_MESSAGES", "3", "limits", "rate_max_messages", 3),
    ("RATE_WINDOW_SECONDS", "30", "limits", "rate_window_seconds", 30.0),
    ("LLM_TEMPERATURE", "0.1", "llm", "temperature", 0.1),
    ("LLM_MAX_TOKENS", "123", "llm", "max_tokens", 123),
    ("LLM_TIMEOUT_SECONDS", "12.5", "llm", "timeout_seconds", 12.5),
    ("LLM_MAX_RETRIES", "0", "llm", "max_retries", 0),
    ("LLM_BACKOFF_INITIAL", "0.25", "llm", "backoff_initial_seconds", 0.25),
    ("LLM_BACKOFF_MAX", "8", "llm", "backoff_max_seconds", 8.0),
    ("LLM_HISTORY_MAX_MESSAGES", "4", "history", "max_messages", 4),
    ("LLM_INPUT_TOKEN_BUDGET", "500", "history", "input_token_budget", 500),
    ("LLM_CHARS_PER_TOKEN", "4", "history", "chars_per_token", 4.0),
])
def test_every_original_env_name_is_honoured(tmp_path, name, raw, section, key, value):
    c = load(None, environ={name: raw}, cwd=tmp_path)
    assert getattr(getattr(c, section), key) == value


def test_groq_api_key_is_the_default_key_variable(tmp_path):
    c = load(None, environ={"GROQ_API_KEY": "gsk_abc"}, cwd=tmp_path)
    assert c.api_key == "gsk_abc" and not c.offline


@pytest.mark.parametrize("raw", [
    "http://127.0.0.1:9000/v1/chat/completions",
    "http://127.0.0.1:9000/v1/chat/completions/",
    "http://127.0.0.1:9000/v1",
    "http://127.0.0.1:9000/v1/",
])
def test_llm_url_may_be_the_full_completions_url_or_the_base(tmp_path, raw):
    c = load(None, environ={"LLM_URL": raw}, cwd=tmp_path)
    assert c.llm.completions_url == "http://127.0.0.1:9000/v1/chat/completions"


def test_psicoia_names_win_over_original_names(tmp_path):
    c = load(None, environ={"MODEL_NAME": "old", "PSICOIA_LLM_MODEL": "new"}, cwd=tmp_path)
    assert c.llm.model == "new"


def test_environment_wins_over_the_file(tmp_path):
    path = write(tmp_path, "llm:\n  max_in_flight: 2\n")
    assert load(path, environ={"MAX_IN_FLIGHT": "5"}).llm.max_in_flight == 5


def test_replace_validates_like_the_file(tmp_path):
    base = load(None, environ={}, cwd=tmp_path)
    assert config.replace(base, llm={"max_in_flight": 3}).llm.max_in_flight == 3
    with pytest.raises(ConfigError) as raised:
        config.replace(base, limits={"max_line_bytes": 0})
    assert str(raised.value).startswith("limits.max_line_bytes:")
