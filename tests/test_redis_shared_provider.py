"""Provider health shared by instances (issue 18): breakers and pacers that learn what another
instance found, on task.Clock with one LocalHealth standing for what Redis carries between them,
then on a real redis-server with real services; and the /retomar wrong-code throttle counted
across instances."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.app.core import build_core
from psicoia.provider.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from psicoia.provider.client import ProviderError
from psicoia.provider.pacing import Pacer
from psicoia.storage.health import LocalHealth
from psicoia.storage.redis_throttle import tag
from tests.fake_provider import FakeProvider, Scripted, serve
from tests.helpers import connect_line_client, make_config, port_of, start_service
from tests.redis_support import eventually, redis_server  # noqa: F401 (fixture)

GREETING_LINES = 3 + len(texts.GREETING_BODY)
PROMPT = [{"role": "user", "content": "hola"}]


class Calls:
    """A provider stand-in: each call returns a Deferred the test fires."""

    online = True

    def __init__(self) -> None:
        self.calls: list[Deferred] = []

    def complete(self, messages, trace_id) -> Deferred:
        self.calls.append(Deferred())
        return self.calls[-1]


def result_of(deferred: Deferred):
    box: list = []
    deferred.addBoth(box.append)
    assert box, "not fired"
    if hasattr(box[0], "trap"):
        box[0].trap(ProviderError)
        return box[0].value
    return box[0]


def two_instances(threshold=2, cooldown=30.0):
    """Two breakers on one clock sharing one health (what Redis does between processes)."""
    clock = Clock()
    health = LocalHealth(clock)  # exclusive probe claims, as in Redis
    clock.advance(1_000_000)  # epoch-like times: "0.0" means "nothing reported"
    made = []
    for _ in range(2):
        provider = Calls()
        made.append((provider, CircuitBreaker(provider, clock, threshold, cooldown, 300.0,
                                              shared=health)))
    return clock, health, made


def fail(breaker, provider, error=None):
    result = breaker.complete(PROMPT, "u:m")
    provider.calls[-1].errback(error or ProviderError("timeout", 500))
    return result_of(result)


def test_an_open_breaker_on_one_instance_opens_the_others_without_a_call():
    clock, health, [(pa, a), (pb, b)] = two_instances()
    fail(a, pa), fail(a, pa)
    assert a.state == OPEN and health.blocked_until("breaker") == clock.seconds() + 30
    refused = result_of(b.complete(PROMPT, "u:m"))
    assert refused.reason == "breaker_open" and pb.calls == []  # B never called its provider
    assert b.state == OPEN
    clock.advance(29.9)
    assert result_of(b.complete(PROMPT, "u:m")).reason == "breaker_open" and pb.calls == []
    clock.advance(0.2)  # the shared cooldown is over: B may probe
    assert b.state == HALF_OPEN
    probe = b.complete(PROMPT, "u:m")
    assert len(pb.calls) == 1
    pb.calls[0].callback("ok")
    assert result_of(probe) == "ok" and b.state == CLOSED
    assert health.blocked_until("breaker") == 0.0  # cleared for everyone


def test_a_cleared_report_closes_a_breaker_that_only_followed_it():
    clock, health, [(pa, a), (pb, b)] = two_instances(cooldown=60.0)
    fail(a, pa), fail(a, pa)
    result_of(b.complete(PROMPT, "u:m"))
    assert b.state == OPEN
    health.clear("breaker")  # another instance's probe succeeded
    call = b.complete(PROMPT, "u:m")
    assert b.state == CLOSED and len(pb.calls) == 1
    pb.calls[0].callback("ok")
    assert result_of(call) == "ok"
    assert a.state == OPEN  # A opened on its own failures: it keeps its own cooldown


def test_a_failed_probe_elsewhere_keeps_the_others_from_probing():
    clock, health, [(pa, a), (pb, b)] = two_instances()
    fail(a, pa), fail(a, pa)
    result_of(b.complete(PROMPT, "u:m"))
    clock.advance(30.1)
    assert a.state == HALF_OPEN and b.state == HALF_OPEN
    assert fail(a, pa).reason == "timeout"  # A's probe fails: a new cooldown, reported
    assert a.state == OPEN
    assert result_of(b.complete(PROMPT, "u:m")).reason == "breaker_open"
    assert pb.calls == [] and b.state == OPEN


def test_one_probe_for_the_whole_service_and_its_success_closes_the_others():
    clock, health, [(pa, a), (pb, b)] = two_instances()
    fail(a, pa), fail(a, pa)
    result_of(b.complete(PROMPT, "u:m"))
    clock.advance(30.1)
    assert a.state == HALF_OPEN and b.state == HALF_OPEN
    probe = a.complete(PROMPT, "u:m")  # A claims the one probe
    assert len(pa.calls) == 3
    assert result_of(b.complete(PROMPT, "u:m")).reason == "breaker_open"  # B does not probe
    assert pb.calls == [] and b.state == HALF_OPEN
    pa.calls[-1].callback("ok")
    assert result_of(probe) == "ok" and a.state == CLOSED
    call = b.complete(PROMPT, "u:m")  # the clear reached B: closed, its call goes out
    assert b.state == CLOSED and len(pb.calls) == 1
    pb.calls[0].callback("ok")
    assert result_of(call) == "ok"


def test_a_probe_claim_lapses_when_its_instance_never_answers():
    clock, health, [(pa, a), (pb, b)] = two_instances()
    fail(a, pa), fail(a, pa)
    result_of(b.complete(PROMPT, "u:m"))  # B follows A's report
    clock.advance(30.1)
    a.complete(PROMPT, "u:m")  # A claims the probe, then (say) dies: no outcome ever
    assert result_of(b.complete(PROMPT, "u:m")).reason == "breaker_open"
    clock.advance(0.5)
    assert result_of(b.complete(PROMPT, "u:m")).reason == "breaker_open"  # not asked again yet
    clock.advance(30.1)  # the claim lapses after the cooldown
    b.complete(PROMPT, "u:m")
    assert len(pb.calls) == 1  # B probes now


def test_a_retry_after_that_failed_a_call_holds_every_instances_pacer():
    clock, health, [(pa, a), _] = two_instances(threshold=5)
    other = Pacer(clock, max_wait_seconds=10, shared=health)
    error = ProviderError("retry_after_too_long", 429)
    error.retry_after = 20.0
    fail(a, pa, error)
    assert a.state == CLOSED  # one failure: the breaker stays closed...
    seconds, why = other.delay(100)
    assert why == "shared" and abs(seconds - 20.0) < 1e-6  # ...but every pacer waits


def test_a_spent_budget_on_one_instance_paces_the_other():
    clock, health = Clock(), LocalHealth()
    clock.advance(1_000_000)
    first = Pacer(clock, max_wait_seconds=10, shared=health)
    second = Pacer(clock, max_wait_seconds=10, shared=health)
    first.observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "9s"})
    assert health.blocked_until("pacing") == 0.0  # not spent: nothing shared
    first.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert not second.spend_now(100)
    waiting = ensureDeferred(second.ready(100, "u:m"))
    clock.advance(1.9)
    assert not waiting.called
    clock.advance(0.2)
    assert waiting.called


def test_memory_and_sqlite_storage_share_nothing(tmp_path):
    for storage in ({"backend": "memory"},
                    {"backend": "sqlite", "sqlite_path": str(tmp_path / "p.db")}):
        core = build_core(make_config(storage=storage), reactor, clock=Clock())
        assert core.breaker._shared is None
        assert core.breaker.provider._pacer._shared is None
        core.manager.store.close()


# --- real redis-server, real services -----------------------------------------------------


def redis_config(url: str, provider_url: str, **llm):
    return make_config(llm={"base_url": provider_url, "max_retries": 0, **llm},
                       storage={"backend": "redis", "redis_url": url, "lease_seconds": 2.0})


def completions(provider: FakeProvider) -> list:
    return [r for r in provider.requests if r.get("method", "POST") == "POST"]


@pytest_twisted.ensureDeferred
async def test_instances_on_redis_learn_the_providers_outage_from_one_of_them(redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    config = redis_config(redis_server.url, url, breaker_failure_threshold=2,
                          breaker_cooldown_seconds=2.0)
    services = [await start_service(config) for _ in range(2)]
    ports = [await port_of(service, "tcp") for service in services]
    try:
        first, second = [await connect_line_client(port) for port in ports]
        await gatherResults([c.wait_lines(GREETING_LINES) for c in (first, second)])
        provider.push(Scripted(status=500), Scripted(status=500))
        for n in range(2):
            first.say(f"hola {n}")
            await first.wait_lines(GREETING_LINES + n + 1)
        assert services[0].breaker.state == OPEN
        assert len(completions(provider)) == 2
        await eventually(lambda: services[1].breaker._shared.blocked_until("breaker") > 0)
        second.say("estoy mal")  # the second instance never saw a failure
        await second.wait_lines(GREETING_LINES + 1)
        assert len(completions(provider)) == 2, "the second instance called a failing provider"
        assert services[1].breaker.state == OPEN
        until = services[1].breaker._shared.blocked_until("breaker")
        await eventually(lambda: reactor.seconds() > until, timeout=5)  # the provider is back
        second.say("sigo acá")
        lines = await second.wait_lines(GREETING_LINES + 2)
        assert lines[-1].startswith("Te escucho.") and len(completions(provider)) == 3
        assert redis_server.command("EXISTS", "psicoia:health:breaker:probe") == b":0\r\n"
        # The probe's success reaches the first instance: it closes without its own probe.
        await eventually(lambda: services[0].breaker._shared.blocked_until("breaker")
                         == 0.0)
        first.say("¿y ahora?")
        lines = await first.wait_lines(GREETING_LINES + 3)
        assert lines[-1].startswith("Te escucho.")
        for client in (first, second):
            client.transport.loseConnection()
    finally:
        await gatherResults([s.stopService() for s in services], consumeErrors=True)
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_wrong_resume_codes_are_counted_across_instances(redis_server):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    config = redis_config(redis_server.url, url)
    services = [await start_service(config) for _ in range(2)]
    ports = [await port_of(service, "tcp") for service in services]
    try:
        clients = [await connect_line_client(port) for port in ports]
        greetings = await gatherResults([c.wait_lines(GREETING_LINES) for c in clients])
        good = next(line for line in greetings[1] if "/retomar " in line).split(
            "/retomar ")[1].split()[0].rstrip(".)")
        said = [0, 0]
        allowed = services[0].manager.resume_throttle.ALLOWED
        for n in range(allowed):  # spread over both instances, as a balancer would
            side = n % 2
            clients[side].say("/retomar ABCDE-FGHJK")
            said[side] += 1
            lines = await clients[side].wait_lines(GREETING_LINES + said[side])
            assert lines[-1] == texts.RESUME_UNKNOWN
            # The announcement reaches the other instance (a few milliseconds).
            await eventually(lambda: all(len(s.manager.resume_throttle._recent(
                tag("127.0.0.1"))) == n + 1 for s in services))
        for side in (0, 1):  # now neither instance checks a code from this address
            clients[side].say(f"/retomar {good}")
            said[side] += 1
            lines = await clients[side].wait_lines(GREETING_LINES + said[side])
            assert lines[-1] == texts.RESUME_SLOW_DOWN, side
        for client in clients:
            client.transport.loseConnection()
    finally:
        await gatherResults([s.stopService() for s in services], consumeErrors=True)
        await provider_port.stopListening()
