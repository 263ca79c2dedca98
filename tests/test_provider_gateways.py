"""
The provider client as operators deploy it: behind gateways, with their mistakes (issue 15).

Each test has the fake provider answer exactly as LiteLLM, OpenAI or Groq did in the field
(status, headers, body: tests/fake_provider.py), in memory on a ``task.Clock`` through
``StubTreq``; the readiness tests run the whole service against the fake on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.ops.metrics import Metrics
from psicoia.provider.breaker import CLOSED, OPEN, CircuitBreaker
from psicoia.provider.client import ProviderError
from psicoia.provider.concurrency import AdaptiveLimit
from psicoia.provider.diagnosis import HINTS, ProviderRejected, diagnose
from psicoia.provider.pacing import Pacer
from tests.fake_provider import (
    GROQ_VIA_LITELLM_429,
    LITELLM_AUTH_ERROR,
    LITELLM_PARALLEL_REFUSAL,
    LITELLM_RPM_REFUSAL,
    LITELLM_UNKNOWN_MODEL,
    LITELLM_WRONG_KEY,
    OPENAI_UNKNOWN_MODEL,
    OPENAI_WRONG_KEY,
    FakeProvider,
    Scripted,
    completion,
    error_body,
    serve,
)
from tests.helpers import LOCAL, captured_logs, connect_line_client, make_config, port_of, \
    start_service
from tests.test_llm import OK, PROMPT, InMemory, outcome

GREETING_LINES = 3 + len(texts.GREETING_BODY)


def events(output) -> list[dict]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def run_for(env: InMemory, seconds: float, until=None, step: float = 0.05) -> float:
    """Advance the clock in small steps (StubTreq answers only when flushed); the time taken."""
    elapsed = 0.0
    while elapsed < seconds and not (until is not None and until()):
        env.advance(step)
        elapsed += step
    return elapsed


def sample(metrics: Metrics, name: str, **labels) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


# --- 1. say what went wrong ------------------------------------------------------------------

REJECTIONS = [
    (LITELLM_WRONG_KEY, "auth", "no_db_connection", "400", "No connected db"),
    (LITELLM_AUTH_ERROR, "auth", "auth_error", "401", "Invalid proxy server token"),
    (OPENAI_WRONG_KEY, "auth", "invalid_request_error", "invalid_api_key", "Incorrect API key"),
    (LITELLM_UNKNOWN_MODEL, "model", "invalid_request_error", "400", "Invalid model name"),
    (OPENAI_UNKNOWN_MODEL, "model", "invalid_request_error", "model_not_found", "does not exist"),
]


@pytest.mark.parametrize("answer, kind, error_type, error_code, message", REJECTIONS)
def test_a_rejection_is_logged_with_its_type_code_and_hint_never_its_message(
        answer, kind, error_type, error_code, message):
    env = InMemory()
    env.fake.push(answer)
    with captured_logs() as output:
        error = outcome(env.call())
    assert isinstance(error, ProviderRejected)
    assert (error.reason, error.status, error.diagnosis.kind) == ("status", answer.status, kind)
    assert len(env.fake.requests) == 1, "an operator mistake is never retried"
    fail = [e for e in events(output) if "provider fail" in e["event"]]
    assert len(fail) == 1
    assert (fail[0]["error_type"], fail[0]["error_code"]) == (error_type, error_code)
    assert fail[0]["hint"] == HINTS[kind]
    assert f"type={error_type}" in fail[0]["event"] and HINTS[kind] in fail[0]["event"]
    assert message not in output.getvalue()


def test_wrong_key_and_unknown_model_behind_litellm_no_longer_log_the_same_line():
    lines = []
    for answer in (LITELLM_WRONG_KEY, LITELLM_UNKNOWN_MODEL):
        env = InMemory()
        env.fake.push(answer)
        with captured_logs() as output:
            outcome(env.call())
        lines.append([e["event"].split("] ", 1)[1] for e in events(output)
                      if "provider fail" in e["event"]][0])
    assert lines[0] != lines[1]
    assert "check llm.api_key_env" in lines[0] and "check llm.model" in lines[1]


@pytest.mark.parametrize("error_type", [
    "Your message 'estoy muy triste' was flagged", "CONTENT_FILTER", "a" * 65, "x\ny", 12.5,
])
def test_error_types_that_are_not_enumerated_words_are_never_logged(error_type):
    env = InMemory()
    env.fake.push(Scripted(status=400, body=error_body("bad", type=error_type, code=error_type)))
    with captured_logs() as output:
        error = outcome(env.call())
    assert error.diagnosis.error_type is None and error.diagnosis.error_code is None
    fail = [e for e in events(output) if "provider fail" in e["event"]][0]
    assert "type=- code=-" in fail["event"]
    if isinstance(error_type, str) and len(error_type) > 3:
        assert error_type not in output.getvalue()


@pytest.mark.parametrize("status, body, kind", [
    (404, error_body("Not Found"), "endpoint"),
    (404, b"<html>404 page not found</html>", "endpoint"),
    (403, error_body("Forbidden", type="permission_denied"), "auth"),
    (400, error_body("Please reduce the length of the messages.",
                     type="invalid_request_error", code="context_length_exceeded"), None),
    (422, error_body("max_tokens must be at most 8192", type="invalid_request_error"), None),
    (429, error_body("Rate limit reached", type="tokens", code="rate_limit_exceeded"), None),
    (500, b"{}", None),
])
def test_diagnosis_of_other_answers(status, body, kind):
    assert diagnose(status, {}, body).kind == kind


# --- 1. the model check at start ---------------------------------------------------------------

def test_model_check_warns_when_the_model_is_not_listed():
    env = InMemory(model="llama-3.1-8b-instant")
    env.fake.models = ["mock-llama", "gpt-4o-mini"]
    with captured_logs() as output:
        result = env.client.check_model()
        env.stub.flush()
    assert outcome(result) is False
    request = env.fake.requests[-1]
    assert (request["method"], request["path"]) == ("GET", b"/v1/models")
    assert request["headers"]["authorization"] == "Bearer k"
    warning = [e for e in events(output) if "model check" in e["event"]][0]
    assert warning["level"] == "warn"
    assert "llama-3.1-8b-instant" in warning["event"] and "mock-llama" in warning["event"]
    assert "check llm.model" in warning["event"]


@pytest.mark.parametrize("model, listed", [
    ("mock-llama", ["mock-llama"]), ("groq/llama-3.1-8b-instant", ["groq/*"]),
])
def test_model_check_is_quiet_when_the_model_is_listed(model, listed):
    env = InMemory(model=model)
    env.fake.models = listed
    with captured_logs() as output:
        result = env.client.check_model()
        env.stub.flush()
    assert outcome(result) is True
    assert not [e for e in events(output) if e["level"] in ("warn", "error")]


def test_model_check_of_a_wrong_key_says_so_and_never_fails():
    env = InMemory()
    env.fake.models = LITELLM_WRONG_KEY
    with captured_logs() as output:
        result = env.client.check_model()
        env.stub.flush()
    assert outcome(result) is None
    assert "check llm.api_key_env" in output.getvalue()


def test_model_check_of_a_server_without_a_model_list_does_not_blame_the_address():
    """A 404 on GET /models (many OpenAI-compatible servers list no models, and chat works)
    is not read as "no chat API at this address" (found by a new user's tryout)."""
    env = InMemory()
    env.fake.models = None  # 404
    with captured_logs() as output:
        result = env.client.check_model()
        env.stub.flush()
    assert outcome(result) is None
    assert "lists no models" in output.getvalue()
    assert "no chat API at this address" not in output.getvalue()


def test_model_check_is_bounded_in_time_and_never_blocks():
    env = InMemory(timeout_seconds=30)
    env.fake.models = Scripted(hang=True)
    box: list = []
    env.client.check_model().addBoth(box.append)
    env.stub.flush()
    env.advance(9.9)
    assert box == []
    env.advance(0.1)
    assert box == [None]
    assert env.clock.getDelayedCalls() == []


def test_model_check_offline_asks_nothing():
    env = InMemory(api_key=None)
    assert outcome(env.client.check_model()) is None
    assert env.fake.requests == []


@pytest_twisted.ensureDeferred
async def test_the_service_checks_the_model_once_at_start_when_online():
    provider = FakeProvider()
    provider.models = ["mock-llama"]
    provider_port, url = await serve(provider)
    config = make_config(llm={"base_url": url, "check_model": True})
    with captured_logs() as output:
        service = await start_service(config)
        try:
            for _ in range(50):
                if "model check" in output.getvalue():
                    break
                await deferLater(0.02)
        finally:
            await service.stopService()
            await provider_port.stopListening()
    assert [r["path"] for r in provider.requests] == [b"/v1/models"]
    assert "llama-3.1-8b-instant is not among the 1 models" in output.getvalue()


def deferLater(seconds: float) -> Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


# --- 1. breaker, problem, readiness, metric ---------------------------------------------------

def breaker_over(env: InMemory, metrics: Metrics, threshold: int = 5) -> CircuitBreaker:
    return CircuitBreaker(env.client, env.clock, threshold, 30.0, 300.0, metrics)


def call(env: InMemory, breaker: CircuitBreaker):
    result = breaker.complete(PROMPT, "Usuario-1:m1")
    env.stub.flush()
    return outcome(result)


@pytest.mark.parametrize("answer", [OPENAI_WRONG_KEY, LITELLM_AUTH_ERROR, LITELLM_WRONG_KEY])
def test_a_rejected_key_opens_the_breaker_at_once_and_is_a_problem(answer):
    metrics = Metrics()
    env = InMemory(instruments=metrics)
    breaker = breaker_over(env, metrics)
    env.fake.push(answer)
    assert isinstance(call(env, breaker), ProviderRejected)
    assert breaker.state == OPEN
    assert breaker.problem == HINTS["auth"]
    assert sample(metrics, "psicoia_provider_problem", kind="auth") == 1
    assert sample(metrics, "psicoia_provider_rejections_total", kind="auth") == 1
    assert call(env, breaker).reason == "breaker_open"
    assert len(env.fake.requests) == 1


@pytest.mark.parametrize("answer", [LITELLM_UNKNOWN_MODEL, OPENAI_UNKNOWN_MODEL])
def test_an_unknown_model_twice_is_a_problem_and_opens_the_breaker_at_the_threshold(answer):
    env, metrics = InMemory(), Metrics()
    breaker = breaker_over(env, metrics, threshold=3)
    env.fake.push(answer, answer, answer)
    call(env, breaker)
    assert (breaker.state, breaker.problem) == (CLOSED, None)
    call(env, breaker)
    assert breaker.problem == HINTS["model"]
    assert sample(metrics, "psicoia_provider_problem", kind="model") == 1
    assert breaker.state == CLOSED
    call(env, breaker)
    assert breaker.state == OPEN


def test_the_problem_clears_when_a_probe_succeeds():
    env, metrics = InMemory(), Metrics()
    breaker = breaker_over(env, metrics)
    env.fake.push(OPENAI_WRONG_KEY)
    call(env, breaker)
    env.advance(30)  # half open: the operator fixed the key meanwhile
    assert call(env, breaker) == "Te escucho. ¿Qué sentís? (4)"
    assert (breaker.state, breaker.problem) == (CLOSED, None)
    assert sample(metrics, "psicoia_provider_problem", kind="auth") == 0


def test_a_request_specific_400_is_still_not_a_problem():
    env, metrics = InMemory(), Metrics()
    breaker = breaker_over(env, metrics, threshold=1)
    body = error_body("Please reduce the length of the messages.",
                      type="invalid_request_error", code="context_length_exceeded")
    env.fake.push(Scripted(status=400, body=body), Scripted(status=400, body=body))
    call(env, breaker)
    call(env, breaker)
    assert (breaker.state, breaker.problem) == (CLOSED, None)


async def readyz(service) -> tuple[int, dict]:
    port = await port_of(service, "http")
    response = await treq.get(f"http://127.0.0.1:{port}/readyz", persistent=False)
    return response.code, json.loads(await response.content())


async def talk(service, *lines: str) -> list[str]:
    client = await connect_line_client(await port_of(service, "tcp"))
    await client.wait_lines(GREETING_LINES)
    received = []
    for count, line in enumerate(lines, 1):  # one at a time: each is its own provider call
        client.say(line)
        received = await client.wait_lines(GREETING_LINES + count)
    client.transport.loseConnection()
    await client.closed
    return received[GREETING_LINES:]


@pytest.mark.parametrize("answer, kind", [(OPENAI_WRONG_KEY, "auth"),
                                          (LITELLM_WRONG_KEY, "auth"),
                                          (LITELLM_UNKNOWN_MODEL, "model")])
@pytest_twisted.ensureDeferred
async def test_readyz_names_a_persistent_key_or_model_rejection(answer, kind):
    provider = FakeProvider()
    provider.push(*[answer] * 10)
    provider_port, url = await serve(provider)
    config = make_config(server={"http": LOCAL},
                         llm={"base_url": url, "breaker_failure_threshold": 5})
    service = await start_service(config)
    try:
        status, report = await readyz(service)
        assert status == 200
        replies = await talk(service, "hola", "sigo acá")
        assert len(replies) == 2 and replies[0].startswith(texts.COMPANION_LIMITED)
        status, report = await readyz(service)
        assert status == 503
        assert HINTS[kind] in report["reasons"]
        assert report["breaker"] == ("open" if kind == "auth" else "closed")
        port = await port_of(service, "http")
        metrics = await (await treq.get(f"http://127.0.0.1:{port}/metrics",
                                        persistent=False)).text()
        assert f'psicoia_provider_problem{{kind="{kind}"}} 1.0' in metrics
    finally:
        await service.stopService()
        await provider_port.stopListening()


# --- 2. headers behind a gateway ---------------------------------------------------------------

def test_retry_after_relayed_by_litellm_with_a_prefix_is_obeyed():
    env = InMemory()
    env.fake.push(GROQ_VIA_LITELLM_429, OK)
    result = env.call()
    assert env.pending_delays() == [2.0], "waits the upstream's 2 s, not the 0.75 s backoff"
    env.advance(1.99)
    assert len(env.fake.requests) == 1
    env.advance(0.01)
    assert outcome(result) == "Te escucho."
    assert len(env.fake.requests) == 2


def test_groq_behind_litellm_asking_for_2s_costs_one_retry_not_three():
    env = InMemory(max_retries=3)
    env.fake.push(GROQ_VIA_LITELLM_429, GROQ_VIA_LITELLM_429, OK)
    result = env.call()
    env.advance(2)
    assert len(env.fake.requests) == 2
    env.advance(2)
    assert outcome(result) == "Te escucho."
    assert len(env.fake.requests) == 3


def test_the_pacer_reads_a_plain_remaining_with_a_prefixed_reset_as_litellm_relays_them():
    env = InMemory(pacing=True)
    pacer = Pacer(env.clock, 10)
    pacer.observe({k.lower(): v for k, v in GROQ_VIA_LITELLM_429.headers.items()})
    assert pacer.delay(1) == (2.0, "requests")


def test_a_gateway_rpm_refusal_asking_60s_gives_the_fallback_at_once_not_three_retries():
    env = InMemory(retry_after_max_seconds=10)
    env.fake.push(LITELLM_RPM_REFUSAL, OK)
    error = outcome(env.call())
    assert (error.reason, error.status) == ("retry_after_too_long", 429)
    assert error.retry_after == 60
    assert len(env.fake.requests) == 1


# --- 3. concurrency refusals -------------------------------------------------------------------

def test_adaptive_limit_halves_once_per_burst_and_never_below_one():
    clock = Clock()
    limit = AdaptiveLimit(clock, 8)
    tickets = [outcome(limit.acquire()) for _ in range(8)]
    assert limit.refused(tickets[0]) is True and limit.limit == 4
    for ticket in tickets[1:]:
        assert limit.refused(ticket) is False  # sent under the old limit: no news
    assert limit.limit == 4
    for _ in range(8):
        limit.release()
    for _ in range(5):
        ticket = outcome(limit.acquire())
        limit.refused(ticket)
        limit.release()
    assert limit.limit == 1


def test_adaptive_limit_queues_in_order_and_a_cancelled_waiter_leaves():
    limit = AdaptiveLimit(Clock(), 1)
    outcome(limit.acquire())
    first, second, third = limit.acquire(), limit.acquire(), limit.acquire()
    second.cancel()
    second.addErrback(lambda _: None)
    assert limit.waiting == 2
    limit.release()
    assert first.called and not third.called
    limit.release()
    assert third.called and limit.in_flight == 1


def test_adaptive_limit_grows_back_one_at_a_time_after_a_quiet_while():
    clock, metrics = Clock(), Metrics()
    limit = AdaptiveLimit(clock, 4, increase_after_seconds=10, instruments=metrics)
    limit.refused(outcome(limit.acquire()))
    limit.release()
    assert limit.limit == 2
    assert sample(metrics, "psicoia_provider_concurrency_limit") == 2
    for _ in range(5):
        limit.succeeded()
    assert limit.limit == 2, "no increase before the quiet while"
    clock.advance(10)
    limit.succeeded()
    limit.succeeded()
    assert limit.limit == 3
    limit.succeeded()
    assert limit.limit == 3, "one step, then another quiet while"
    clock.advance(10)
    for _ in range(3):
        limit.succeeded()
    assert limit.limit == 4
    clock.advance(100)
    for _ in range(10):
        limit.succeeded()
    assert limit.limit == 4 and sample(metrics, "psicoia_provider_concurrency_limit") == 4


def gateway(parallel: int, latency: float = 1.0, **llm) -> InMemory:
    """A LiteLLM-like gateway: ``parallel`` requests at once per key, each answered after
    ``latency`` seconds, the excess refused with its 429 (Retry-After: 60)."""
    env = InMemory(**llm)
    env.fake.max_parallel = parallel
    env.fake.reply_for = lambda body: "ok"
    env.fake.push(*[Scripted(body=completion("ok"), delay=latency)] * 200)
    return env


def test_a_parallel_limit_below_max_in_flight_queues_users_instead_of_failing_them():
    env = gateway(parallel=2, latency=1.0, max_in_flight=8, retry_after_max_seconds=10)
    metrics = Metrics()
    breaker = breaker_over(env, metrics, threshold=1)
    results = [breaker.complete(PROMPT, f"Usuario-{n}:m1") for n in range(1, 9)]
    env.stub.flush()
    assert env.fake.refused >= 1
    elapsed = run_for(env, 30, until=lambda: all(r.called for r in results))
    assert [outcome(r) for r in results] == ["ok"] * 8
    assert breaker.state == CLOSED, "a busy gateway is not an outage"
    assert env.client.limit.limit <= 2
    assert elapsed < 8, "a few seconds of queue, not the gateway's 60 s window"
    assert env.fake.refused < 20


def test_a_concurrency_refusal_ignores_the_gateways_60s_retry_after():
    env = InMemory()
    env.fake.push(LITELLM_PARALLEL_REFUSAL, OK)
    result = env.call()
    assert env.pending_delays() == [0.75]
    env.advance(0.75)
    assert outcome(result) == "Te escucho."


def test_a_refusal_that_lasts_gives_the_fallback_within_the_cap_without_opening_the_breaker():
    env, metrics = InMemory(retry_after_max_seconds=10, max_retries=1), Metrics()
    breaker = breaker_over(env, metrics, threshold=1)
    env.fake.push(*[LITELLM_PARALLEL_REFUSAL] * 50)
    result = breaker.complete(PROMPT, "Usuario-1:m1")
    env.stub.flush()
    run_for(env, 10, until=lambda: result.called)
    error = outcome(result)
    assert isinstance(error, ProviderRejected) and error.status == 429
    assert error.retry_after is None
    assert breaker.state == CLOSED
    assert 3 <= len(env.fake.requests) <= 6


def test_plain_429s_while_our_other_calls_are_out_lower_the_concurrency():
    env = InMemory(max_in_flight=8)
    plain = Scripted(status=429, body=error_body("Too many requests", code="429"))
    slow = Scripted(body=completion("ok"), delay=5)
    env.fake.push(slow, slow, plain, plain, OK, OK)
    results = [env.client.complete(PROMPT, f"Usuario-{n}:m1") for n in range(1, 5)]
    env.stub.flush()
    assert env.client.limit.limit == 4
    run_for(env, 6)
    assert all(outcome(r) in ("ok", "Te escucho.") for r in results)


def test_one_plain_429_alone_changes_no_concurrency():
    env = InMemory(max_in_flight=8)
    env.fake.push(Scripted(status=429, body=b"{}"), OK)
    result = env.call()
    env.advance(1)
    assert outcome(result) == "Te escucho."
    assert env.client.limit.limit == 8


# --- 4. correlation ---------------------------------------------------------------------------

@pytest.mark.parametrize("headers, body_id, expected", [
    ({"x-litellm-call-id": "69a0112e-b8ca-4456-9598-058c0b9161c6", "x-request-id": "req_1"},
     "chatcmpl-1", "69a0112e-b8ca-4456-9598-058c0b9161c6"),
    ({"x-request-id": "req_01hz3k7"}, "chatcmpl-1", "req_01hz3k7"),
    ({}, "chatcmpl-9d1acdf3-a2fb-4673-9caa-a593c6fd4706",
     "chatcmpl-9d1acdf3-a2fb-4673-9caa-a593c6fd4706"),
    ({"x-request-id": "has spaces <script>"}, "chatcmpl-2", "chatcmpl-2"),
    ({}, "a" * 101, "-"),
])
def test_the_ok_line_carries_the_providers_request_id(headers, body_id, expected):
    env = InMemory()
    env.fake.push(Scripted(body=completion("Te escucho.", id=body_id), headers=headers))
    with captured_logs() as output:
        assert outcome(env.call()) == "Te escucho."
    ok = [e for e in events(output) if "provider ok" in e["event"]][0]
    assert ok["request_id"] == expected
    assert f"request_id={expected}" in ok["event"]


def test_the_fail_line_carries_the_gateways_call_id():
    env = InMemory()
    env.fake.push(LITELLM_UNKNOWN_MODEL)
    with captured_logs() as output:
        outcome(env.call())
    fail = [e for e in events(output) if "provider fail" in e["event"]][0]
    assert fail["request_id"] == "81551b5e-9a7f-4609-ba8e-10a62e11a78d"


@pytest_twisted.ensureDeferred
async def test_users_over_a_gateway_parallel_limit_all_get_model_replies_end_to_end():
    """The whole service on 127.0.0.1 against a gateway that takes one request at a time and
    refuses the rest with LiteLLM's 429 (Retry-After: 60): four users writing at once all get
    the model's reply, in about four latencies, and the breaker stays closed."""
    provider = FakeProvider(default_reply="te leo")
    provider.max_parallel = 1
    provider.push(*[Scripted(body=completion("te leo"), delay=0.1)] * 10)
    provider_port, url = await serve(provider)
    config = make_config(server={"http": LOCAL}, llm={
        "base_url": url, "max_in_flight": 4, "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.2, "breaker_failure_threshold": 1})
    service = await start_service(config)
    clients = []
    try:
        for _ in range(4):
            client = await connect_line_client(await port_of(service, "tcp"))
            await client.wait_lines(GREETING_LINES)
            clients.append(client)
        started = reactor.seconds()
        for client in clients:
            client.say("hola")
        for client in clients:
            lines = await client.wait_lines(GREETING_LINES + 1, timeout=10)
            assert lines[-1] == "te leo"
        assert reactor.seconds() - started < 5
        assert provider.refused >= 1
        assert service.breaker.state == CLOSED
        status, report = await readyz(service)
        assert status == 200
    finally:
        for client in clients:
            client.transport.loseConnection()
            await client.closed
        await service.stopService()
        await provider_port.stopListening()


# --- 5. stacked retries ----------------------------------------------------------------------

def test_a_gateway_that_retried_too_is_named_once_in_the_log():
    env = InMemory(max_retries=3)
    retried = Scripted(body=completion("Te escucho."), headers={"x-litellm-attempted-retries": "2"})
    env.fake.push(retried, retried)
    with captured_logs() as output:
        outcome(env.call())
        outcome(env.call())
    warnings = [e for e in events(output) if "retry at one layer only" in e["event"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "warn"


@pytest.mark.parametrize("max_retries, header", [(0, "2"), (3, "0"), (3, None)])
def test_no_stacked_retries_warning_when_only_one_layer_retries(max_retries, header):
    env = InMemory(max_retries=max_retries)
    headers = {"x-litellm-attempted-retries": header} if header else {}
    env.fake.push(Scripted(body=completion("Te escucho."), headers=headers))
    with captured_logs() as output:
        outcome(env.call())
    assert "retry at one layer only" not in output.getvalue()


def test_a_400_whose_message_echoes_a_user_saying_api_key_is_not_read_as_auth():
    """Only enumerated words decide ``auth`` on a 400: message text may quote the user, and an
    ``auth`` reading would open the breaker for everyone."""
    body = error_body("Invalid content: 'creo que perdí mi api key y estoy unauthorized'",
                      type="invalid_request_error", code="content_policy")
    assert diagnose(400, {}, body).kind is None
