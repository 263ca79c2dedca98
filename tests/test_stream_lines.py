"""
A streamed reply's one TCP line, whatever happens while it is being written (issue 13; found
by a new user's tryout): an acute message's emergency line comes first and the model's words
once; a deadline ends what was shown with the cut notice; a notice, a takeover or keys typed
in character mode do not break the line. The real protocol, session and crisis layer on a
StringTransport and a task.Clock; the provider is a stub that streams when the test says.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from psicoia import texts
from psicoia.ops.metrics import Metrics
from psicoia.transports.access import ConnectionRegistry
from psicoia.transports.lineout import rest_of
from psicoia.transports.tcp import ChatLineFactory
from tests.helpers import make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.test_protocol_tcp import Connection
from tests.test_terminals import CHARACTER_MODE, keys

ACUTE = "me tomé todas las pastillas del cajón"


class StreamingProvider(ControlledProvider):
    """Like ControlledProvider; ``stream`` keeps each call's ``on_delta`` for the test."""

    def stream(self, messages, trace_id: str, on_delta):
        deferred = self.complete(messages, trace_id)
        self.calls[-1].on_delta = on_delta
        return deferred


class Stack:
    def __init__(self, **llm) -> None:
        self.clock = Clock()
        self.provider = StreamingProvider()
        self.config = make_config(llm={"stream": True, **llm})
        metrics = Metrics()
        self.manager = make_manager(self.config, self.provider, self.clock,
                                    system_prompt="Sos un acompañante breve.",
                                    instruments=metrics)
        registry = ConnectionRegistry(100, 100, metrics)
        self.factory = ChatLineFactory(self.manager, registry, self.clock)
        self.client = Connection(self.factory, "10.0.0.1", 40000)

    def after_greeting(self) -> bytes:
        data = self.client.transport.value()
        marker = texts.GREETING_LAST.encode("utf-8") + b"\r\n"
        return data[data.index(marker) + len(marker):]


def streaming(stack: Stack, line: bytes = b"hola\r\n", said: str = "Hola, te"):
    """Send ``line``; the provider's call, which has streamed ``said`` so far."""
    stack.client.send(line)
    call = stack.provider.calls[-1]
    call.on_delta(said)
    return call


def stopping(stack: Stack) -> None:
    """The server starts its shutdown: no new work, every connection told."""
    stack.manager.drain()
    stack.client.protocol.notify_shutdown()


def acute_lead(stack: Stack) -> str:
    return stack.manager.crisis.lead("acute")


def test_an_acute_message_gets_the_emergency_line_first_and_the_models_words_once():
    stack = Stack()
    stack.client.say(ACUTE)
    lead = acute_lead(stack)
    # Before the model has said anything, the emergency line is on the screen.
    assert stack.after_greeting() == f"{lead} ".encode("utf-8")
    call = stack.provider.calls[-1]
    call.on_delta("Estoy acá con vos.")
    call.answer("Estoy acá con vos.")
    assert stack.client.replies == [f"{lead} Estoy acá con vos."]


def test_a_deadline_ends_what_was_shown_with_the_cut_notice_on_the_same_line():
    stack = Stack(reply_deadline_seconds=5)
    streaming(stack)
    stack.clock.advance(5)
    assert stack.client.replies == [f"Hola, te {texts.REPLY_CUT}"]
    assert stack.provider.calls[-1].cancelled


def test_the_shutdown_notice_waits_for_the_streamed_line_to_end():
    stack = Stack()
    call = streaming(stack)
    stopping(stack)
    assert texts.SHUTTING_DOWN.encode("utf-8") not in stack.client.transport.value()
    call.on_delta(" escucho.")
    call.answer("Hola, te escucho.")
    assert stack.client.replies == ["Hola, te escucho.", texts.SHUTTING_DOWN]


def test_a_stream_abandoned_at_the_end_of_the_shutdown_grace_gets_the_notice_once():
    stack = Stack()
    call = streaming(stack)
    stopping(stack)
    stack.manager.abandon()  # the grace is over: the reply in flight is cancelled
    assert call.cancelled
    assert stack.client.replies == [f"Hola, te… {texts.SHUTTING_DOWN}"]


def test_a_takeover_during_a_stream_ends_its_line_before_the_notice():
    stack = Stack()
    streaming(stack)
    stack.client.protocol.on_taken_over()
    assert stack.client.replies == ["Hola, te", texts.TAKEN_OVER]


def test_keys_typed_during_a_stream_are_not_echoed_into_its_line():
    stack = Stack()
    stack.client.send(CHARACTER_MODE)
    call = streaming(stack, b"hola\r\x00")
    stack.client.transport.clear()
    keys(stack.client, b"yo" + b"\x7f")  # typed, and a correction, while the line is written
    assert stack.client.transport.value() == b""
    call.on_delta(" escucho.")
    call.answer("Hola, te escucho.")
    # The line ends as streamed; what was typed meanwhile is drawn after it, as it was typed.
    assert stack.client.transport.value() == b" escucho.\r\nyo\b \b"


def test_a_line_sent_during_a_stream_shows_after_it_and_is_answered_next():
    stack = Stack()
    stack.client.send(CHARACTER_MODE)
    keys(stack.client, b"hola\r\x00")
    first = stack.provider.calls[-1]
    first.on_delta("Hola, te")
    keys(stack.client, b"sigo\r\x00")
    first.answer("Hola, te escucho.")
    second = stack.provider.calls[-1]
    assert second is not first and second.text == "sigo"
    second.on_delta("Dale.")
    second.answer("Dale.")
    output = stack.client.transport.value()
    assert output.endswith(b"Hola, te escucho.\r\nsigo\r\nDale.\r\n")


def test_rest_of_never_writes_the_shown_text_twice():
    assert rest_of("Hola. Recursos: 135", "Hola.") == " Recursos: 135"
    # The crisis layer put a line before what was shown (the tier rose after the stream began).
    assert rest_of("Emergencia: 911. Hola. Recursos", "Hola.") == " Emergencia: 911. Recursos"
    assert rest_of("Otra respuesta.", "Hola.") == " Otra respuesta."
    assert rest_of("Otra respuesta.", "Hola, te") == "… Otra respuesta."  # cut mid-sentence
    # Reasoning found out after it was shown (a lone </think>): the answer is on the line.
    assert rest_of("Hola, acá estoy.", "pienso...Hola, acá estoy.") == ""
