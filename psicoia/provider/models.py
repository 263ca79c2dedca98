"""
At start, ask the provider which models it serves, and warn when ``llm.model`` is not one.

Pointing ``llm.base_url`` at a gateway and keeping the default ``llm.model`` is the likeliest
operator mistake; without this check it shows only as every user getting the fallback. One
``GET {base_url}/models`` (the OpenAI list shape, ``{"data": [{"id": ...}, ...]}``), bounded by
a timeout, in the background: start-up never waits for it and its failure changes nothing but
a log line. Wildcard entries (``groq/*``, as LiteLLM lists them) match by ``fnmatch``.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from psicoia.config import LLMConfig
from psicoia.provider.diagnosis import diagnose

MODELS_TIMEOUT_SECONDS = 10.0
MODELS_MAX_BYTES = 4 << 20  # big catalogues (hundreds of models with metadata) fit
SAMPLE = 5
_MODEL_ID = re.compile(r"[A-Za-z0-9_.:/@+*-]{1,100}")


def listed_models(body: bytes) -> Optional[list[str]]:
    """The model ids of an OpenAI-style list (``data[].id``), only the id-looking ones; None
    when the body is not such a list."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    ids = []
    for entry in entries:
        model = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(model, str) and _MODEL_ID.fullmatch(model):
            ids.append(model)
    return ids


def is_listed(model: str, ids: list[str]) -> bool:
    return any(model == entry or ("*" in entry and fnmatchcase(model, entry)) for entry in ids)


MODELS_NOT_FOUND_HINT = ("this server lists no models (some OpenAI-compatible servers do not); "
                         "if replies fail too, check llm.base_url")


class ModelCheck:
    """One run of the check; :meth:`run` -> Deferred[True | False | None], never failing.

    ``http`` is the client's treq ``HTTPClient``; ``headers`` the request headers (the key's
    Authorization among them); ``read(response, limit)`` the client's body reader, a Deferred
    of ``(status, headers, body)``.
    """

    log = Logger()

    def __init__(self, config: LLMConfig, clock: IReactorTime, http: Any,
                 headers: dict[bytes, list[bytes]],
                 read: Callable[[Any, int], Deferred]) -> None:
        self.config = config
        self._clock = clock
        self._http = http
        self._headers = headers
        self._read = read
        self._request: Optional[Deferred] = None

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/models"

    def run(self) -> Deferred:
        timeout = min(self.config.timeout_seconds, MODELS_TIMEOUT_SECONDS)
        try:
            request = self._http.get(self.url, headers=self._headers)
        except Exception:  # noqa: BLE001 - a bad URL is reported like any other failure
            request = Deferred()
            request.errback(Failure())
        request.addCallback(self._read, MODELS_MAX_BYTES)
        request.addTimeout(timeout, self._clock)
        self._request = request
        return request.addCallbacks(self._answered, self._failed)

    def stop(self) -> None:
        if self._request is not None and not self._request.called:
            self._request.cancel()

    def _answered(self, response: tuple[int, dict, bytes]) -> Optional[bool]:
        status, headers, body = response
        model = self.config.model
        if status != 200:
            found = diagnose(status, headers, body)
            hint = found.hint or "the provider may not list models; replies will tell"
            if status == 404:  # many OpenAI-compatible servers serve chat but list no models
                hint = MODELS_NOT_FOUND_HINT
            self.log.warn(
                "model check: GET /models answered status={status} type={error_type} "
                "hint={hint}",
                status=status, error_type=found.error_type or "-", hint=hint,
            )
            return None
        ids = listed_models(body)
        if ids is None:
            self.log.warn("model check: GET /models did not answer a model list")
            return None
        if is_listed(model, ids):
            self.log.info("model check: the provider serves llm.model {name}", name=model)
            return True
        self.log.warn(
            "model check: llm.model {name} is not among the {count} models the provider "
            "lists, e.g. {sample} (check llm.model)",
            name=model, count=len(ids), sample=", ".join(ids[:SAMPLE]) or "none",
        )
        return False

    def _failed(self, failure: Failure) -> None:
        if failure.check(TimeoutError):
            why = "timeout"
        else:
            why = failure.type.__name__
        if why == "CancelledError":
            return None
        self.log.warn("model check: GET /models failed error={error}", error=why)
        return None
