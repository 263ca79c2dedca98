"""The hot-path changes made for docs/benchmarks.md keep behaviour: what is logged, what is sent."""

from __future__ import annotations

import pytest
from hyperlink import EncodedURL
from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel
from twisted.web.iweb import IAgent
from zope.interface import implementer

from psicoia.provider._http import ProviderHTTP
from psicoia.provider.client import BytesBody, ChatProvider, PreparedURL, _body_producer
from psicoia.ops.logsetup import LevelLogger

from tests.helpers import fired, make_manager  # noqa: F401
from tests.helpers import make_config
from tests.provider_stub import ControlledProvider


def test_level_logger_builds_every_event_until_the_service_sets_a_level():
    events: list[dict] = []
    log = LevelLogger(namespace="psicoia.test", observer=events.append)
    try:
        log.debug("a")
        log.info("b")
        LevelLogger.drop_below("warn")
        log.debug("c")
        log.info("d")
        log.warn("e")
        log.error("f")
    finally:
        LevelLogger.dropped = frozenset()
    assert [event["log_format"] for event in events] == ["a", "b", "e", "f"]
    assert events[-1]["log_level"] is LogLevel.error


def test_bytes_body_writes_the_whole_body_at_once_with_its_length():
    body = b'{"model": "x", "messages": []}'
    producer = _body_producer(body)
    assert isinstance(producer, BytesBody) and producer.length == len(body)
    consumer = StringTransport()
    finished = producer.startProducing(consumer)
    assert consumer.value() == body
    assert finished.called


# --- the provider URL, encoded once (psicoia.provider.client.PreparedURL) ---------------------------------

@pytest.mark.parametrize("text", [
    "http://127.0.0.1:41641/v1/chat/completions",
    "https://api.groq.com/openai/v1/chat/completions",
    "https://ejemplo-señal.test/v1/chat completions",  # IDN host, a space in the path
])
def test_prepared_url_gives_treq_the_bytes_it_would_have_built_from_the_string(text):
    prepared = PreparedURL.prepare(text)
    expected = EncodedURL.from_text(text).to_uri().to_text()
    # What treq.client.HTTPClient.request does with the URL it is given:
    assert prepared.to_uri().to_text().encode("ascii") == expected.encode("ascii")
    assert isinstance(prepared, EncodedURL)  # treq takes it as already parsed


def test_a_changed_copy_of_a_prepared_url_is_encoded_as_usual():
    prepared = PreparedURL.prepare("http://127.0.0.1:1/v1/chat/completions")
    copy = prepared.replace(query=(("a", "b c"),))
    assert copy.to_uri().to_text() == "http://127.0.0.1:1/v1/chat/completions?a=b%20c"


def test_an_unusable_url_is_left_for_treq_to_report():
    assert PreparedURL.prepare("http://[::1") == "http://[::1"


# --- loggers built once per instance (psicoia.ops.logsetup.LevelLogger) ---------------------------

def test_level_logger_is_built_once_per_instance_with_twisteds_namespace_and_source():
    class Owner:
        log = LevelLogger()

    class Plain:
        log = Logger()

    owner = Owner()
    first = owner.log
    assert owner.log is first
    expected = Plain().log
    assert first.namespace == expected.namespace.replace("Plain", "Owner")
    assert first.source is owner
    assert Owner().log is not first  # each instance its own, as with Twisted's


# --- the semaphore fast path (psicoia.chat.session.SessionManager._ask_provider) -------------------

def test_with_a_free_slot_the_request_goes_out_in_the_same_call_and_the_slot_comes_back():
    provider = ControlledProvider()
    manager = make_manager(make_config(llm={"max_in_flight": 1}), provider, Clock(),
                             system_prompt="Sos breve.")
    session = fired(manager.open("tcp", "10.0.0.1"))
    replies: list = []
    session.submit("hola").reply.addCallback(replies.append)
    assert len(provider.calls) == 1  # no reactor turn between the line and the request
    assert manager.slots.semaphore.tokens == 0
    provider.calls[0].answer("Te escucho.")
    assert [reply.text for reply in replies] == ["Te escucho."]
    assert manager.slots.semaphore.tokens == 1


def test_a_queued_message_cancelled_while_waiting_never_takes_a_slot():
    provider = ControlledProvider()
    manager = make_manager(make_config(llm={"max_in_flight": 1}), provider, Clock(),
                             system_prompt="Sos breve.")
    first, second = fired(manager.open("tcp", "10.0.0.1")), fired(manager.open("tcp", "10.0.0.2"))
    first.submit("uno").reply
    second.submit("dos").reply
    assert len(manager.slots.semaphore.waiting) == 1
    second.close()
    assert len(manager.slots.semaphore.waiting) == 0
    provider.calls[0].answer("ok")
    assert manager.slots.semaphore.tokens == 1 and len(provider.calls) == 1


# --- the provider request straight on the Agent (psicoia.provider.request) --------------------

@implementer(IAgent)
class RecordingAgent:
    """Records each request (method, URI, headers, the body its producer writes) and never
    answers: what each client path hands the pooled Agent."""

    def __init__(self) -> None:
        self.requests: list[tuple] = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        consumer = StringTransport()
        bodyProducer.startProducing(consumer)
        self.requests.append((method, uri, dict(headers.getAllRawHeaders()), consumer.value(),
                              bodyProducer.length))
        return Deferred()


@pytest.mark.parametrize("stream", [False, True])
def test_the_direct_request_is_treqs_request_without_its_wrappers(stream):
    config = make_config(api_key="sk-x", llm={"base_url": "https://ejemplo-señal.test/v1",
                                               "stream": stream}).llm
    direct, through_treq = RecordingAgent(), RecordingAgent()
    for agent, http in ((direct, ProviderHTTP(direct)),
                        (through_treq, HTTPClient(through_treq,
                                                  data_to_body_producer=_body_producer))):
        provider = ChatProvider(config, "sk-x", Clock(), http=http)
        provider.stream([{"role": "user", "content": "hola ñ"}], "Usuario-1:m1", lambda _: None)
    (method, uri, headers, body, length), = direct.requests
    (t_method, t_uri, t_headers, t_body, t_length), = through_treq.requests
    assert (method, uri, body, length) == (t_method, t_uri, t_body, t_length)
    assert uri == b"https://xn--ejemplo-seal-jhb.test/v1/chat/completions"
    # treq's ContentDecoderAgent asks for gzip; nothing else differs.
    assert t_headers.pop(b"Accept-Encoding") == [b"gzip"]
    assert headers == t_headers
    assert headers[b"X-Request-Id"] == [b"Usuario-1:m1"]
    assert headers[b"Authorization"] == [b"Bearer sk-x"]
