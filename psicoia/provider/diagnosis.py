"""
What a provider's (or gateway's) error answer means for the operator: pure functions.

A non-200 answer is read into a :class:`Diagnosis`: the error ``type`` and ``code`` the body
names (only when they look like enumerated words, ``^[a-z0-9_.-]{1,64}$``: never free text,
which could echo user content), what kind of problem it is, and a plain hint for the log.

The kinds (docs/operations.md, "Running behind a gateway"):

- ``auth``: the key is wrong, missing or not allowed. 401 and 403; also a 400 whose error type
  or code talks about auth or keys (the LiteLLM proxy without a database answers a wrong key
  with ``400 {"error": {"type": "no_db_connection"}}``); for a 400, only the type and code
  count, never the message.
- ``model``: the model is not served. ``404 model_not_found`` (OpenAI, Groq), LiteLLM's
  ``400 ... "Invalid model name passed in model=..."``, ``invalid_model`` codes.
- ``endpoint``: a 404 that is not about a model: ``llm.base_url`` points at no chat API.
- ``concurrency``: a 429 that says it refuses parallel requests (LiteLLM's
  ``rate_limit_type: max_parallel_requests`` header, or "max parallel request" in the message).
  Its ``Retry-After`` is the gateway's window, not the time until a slot frees.

The message text of the body is only *matched* against fixed markers here; it is never kept,
returned or logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from psicoia.chat.ports import ProviderError
from psicoia.provider.headers import header

AUTH = "auth"
MODEL = "model"
ENDPOINT = "endpoint"
CONCURRENCY = "concurrency"

# Kinds that no retry fixes, only the operator: a readiness problem when they repeat.
PERSISTENT = frozenset({AUTH, MODEL, ENDPOINT})

HINTS = {
    AUTH: "provider rejects the API key (check llm.api_key_env)",
    MODEL: "model not served (check llm.model)",
    ENDPOINT: "no chat API at this address (check llm.base_url)",
    CONCURRENCY: "provider refuses parallel requests (lowering concurrency; "
                 "keep llm.max_in_flight at or below its limit)",
}

_WORD = re.compile(r"[a-z0-9_.-]{1,64}")
# A 400 is read as ``auth`` from its enumerated type/code only, never from message text: a
# message may echo what a user wrote, and an ``auth`` reading opens the breaker for everyone.
_AUTH_WORDS = ("auth", "key", "no_db_connection", "permission", "forbidden")
# Message markers for a model not served, as specific as the providers' own sentences.
_MODEL_TEXT = ("invalid model name passed in model=", "model_not_found", "model not found",
               "no such model", "unknown model")
_MODEL_SENTENCE = re.compile(r"\bthe model `[^`]{1,200}` does not exist")
_CONCURRENCY_TYPES = frozenset({"max_parallel_requests", "parallel_requests",
                                "concurrent_requests", "concurrency"})
_CONCURRENCY_TEXT = ("max parallel request", "limit type: max_parallel_requests",
                     "parallel request limit", "too many concurrent requests")


@dataclass(frozen=True)
class Diagnosis:
    """What an error answer said, in safe words.

    ``error_type`` / ``error_code``: the body's ``error.type`` / ``error.code`` when they match
    ``^[a-z0-9_.-]{1,64}$``, else None. ``kind``: one of ``auth``, ``model``, ``endpoint``,
    ``concurrency`` or None. ``hint``: one line for the log, or None.
    """

    error_type: Optional[str] = None
    error_code: Optional[str] = None
    kind: Optional[str] = None
    hint: Optional[str] = None
    body_id: Optional[Any] = None  # the body's ``id``, unchecked (headers.request_id checks it)


class ProviderRejected(ProviderError):
    """The provider answered with an error status (``reason`` is ``status``), with its
    :class:`Diagnosis` and the provider's request id (or None)."""

    def __init__(self, status: int, diagnosis: Diagnosis, request_id: Optional[str] = None
                 ) -> None:
        super().__init__("status", status)
        self.diagnosis = diagnosis
        self.request_id = request_id


def _word(value: Any) -> Optional[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _WORD.fullmatch(value):
        return value
    return None


def _error_fields(body: bytes) -> tuple[Any, Any, str, Any]:
    """(type, code, lower-case message, body id) from the shapes providers use; blanks if none.

    Shapes: ``{"error": {"type", "code", "message"}}`` (OpenAI, Groq, LiteLLM),
    ``{"error": "text"}``, ``{"detail": {...} or "text"}`` (FastAPI), ``{"message": "text"}``.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, None, body[:4096].decode("utf-8", "replace").lower(), None
    if not isinstance(data, dict):
        return None, None, "", None
    body_id = data.get("id")
    error = data.get("error", data.get("detail", data))
    if isinstance(error, str):
        return None, None, error.lower(), body_id
    if not isinstance(error, dict):
        return None, None, "", body_id
    message = error.get("message", error.get("error", ""))
    if not isinstance(message, str):
        message = json.dumps(message)
    return error.get("type"), error.get("code"), message.lower(), body_id


def _kind(status: int, words: tuple[str, ...], message: str,
          headers: Mapping[str, str]) -> Optional[str]:
    if status in (401, 403):
        return AUTH
    if status == 429:
        limit_type = (header(headers, "rate_limit_type") or "").strip().lower()
        if (limit_type in _CONCURRENCY_TYPES or any(w in _CONCURRENCY_TYPES for w in words)
                or any(marker in message for marker in _CONCURRENCY_TEXT)):
            return CONCURRENCY
        return None
    if status not in (400, 404, 422):
        return None
    if (any("model" in w for w in words) or any(marker in message for marker in _MODEL_TEXT)
            or _MODEL_SENTENCE.search(message)):
        return MODEL
    if status == 404:
        return ENDPOINT
    if any(marker in w for w in words for marker in _AUTH_WORDS):
        return AUTH
    return None


def diagnose(status: int, headers: Mapping[str, str], body: bytes) -> Diagnosis:
    """Read an error answer (``status`` not 200; ``headers`` by lower-case name)."""
    raw_type, raw_code, message, body_id = _error_fields(body)
    error_type, error_code = _word(raw_type), _word(raw_code)
    words = tuple(w.lower() for w in (error_type, error_code) if w)
    kind = _kind(status, words, message, headers)
    return Diagnosis(error_type, error_code, kind, HINTS.get(kind), body_id)
