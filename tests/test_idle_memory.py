"""
What an idle user costs in memory (issue 19), and that letting go of it changes nothing the
user or the model sees: the history goes back to the store once it is written and is read back
for the next message (psicoia/chat/recall.py); the crisis state is kept as its values; a TCP
connection keeps no per-message object and no attribute dict of its own.
"""

from __future__ import annotations

import gc
from collections import Counter

import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.tcp import Server
from twisted.internet.testing import StringTransport

from psicoia.chat.history import build_prompt
from psicoia.chat.recall import IDLE_SECONDS
from psicoia.chat.second_opinion import SecondOpinion
from psicoia.ops.connections import ConnectionRegistry
from psicoia.storage.memory import MemoryStore
from psicoia.transports.layout import SERVER_LATE_ATTRIBUTES, share_attribute_layout
from psicoia.transports.tcp import ChatLineFactory, ChatLineProtocol
from tests.helpers import fired, history_of, make_config, make_manager
from tests.provider_stub import ControlledProvider
from tests.storage_support import eventually, open_sqlite

SYSTEM = "sistema"


def build(store=None, **sections):
    clock = Clock()
    provider = ControlledProvider()
    sections.setdefault("safety", {"classifier": "off"})
    manager = make_manager(make_config(**sections), provider, clock, store=store,
                           system_prompt=SYSTEM)
    return manager, provider, clock


def as_sent(turns: list, text: str, config) -> list:
    """What the model is sent when the window is kept in memory all along (the reference)."""
    history = config.history
    return build_prompt(SYSTEM, turns[-history.max_messages:], text, history.max_messages,
                        history.input_token_budget, history.chars_per_token)


@pytest_twisted.ensureDeferred
async def test_sqlite_history_leaves_memory_when_stored_and_the_model_gets_the_same_turns(
        tmp_path):
    store = open_sqlite(tmp_path / "conversations.db")
    manager, provider, clock = build(store=store, history={"max_messages": 4})
    try:
        session = await manager.open("tcp", "127.0.0.1")
        replies: list = []
        sent: list = []
        turns: list = []

        async def exchange(*texts: str) -> None:
            """Send ``texts`` at once, answer each call as it comes, in order."""
            done = [session.submit(text).reply.addCallback(replies.append) for text in texts]
            for text in texts:
                await eventually(lambda: provider.pending)  # after the read from the file
                call = provider.pending[0]
                assert call.messages == as_sent(turns, text, manager.config)
                sent.append(call.text)
                turns.extend([("user", text), ("assistant", f"re: {text}")])
                call.answer(f"re: {text}")
            for reply in done:
                assert reply.called
            assert session.turns is not None, "kept while the user may go on at once"
            clock.advance(IDLE_SECONDS)
            await eventually(lambda: session.turns is None)  # written, idle, let go of

        await exchange("uno")
        await exchange("dos")
        await exchange("tres", "cuatro", "cinco")  # arrive together while it is in the file
        assert sent == ["uno", "dos", "tres", "cuatro", "cinco"]
        assert [r.text for r in replies] == [f"re: {t}" for t in sent], "once each, in order"
        assert session.turns is None and session.risk is None and session._pending is None
    finally:
        await store.close()


def test_with_the_memory_store_the_session_keeps_no_second_copy():
    manager, provider, clock = build()
    chat = fired(manager.open("tcp", "127.0.0.1"))
    chat.submit("me llamo Ana")
    provider.answer_all()
    clock.advance(IDLE_SECONDS)
    assert chat.turns is None, "the store holds the window; the session lets go of its copy"
    assert history_of(chat) == [("user", "me llamo Ana"), ("assistant", "re: me llamo Ana")]
    chat.submit("¿te acordás?")
    assert [m["content"] for m in provider.pending[0].messages] == [
        SYSTEM, "me llamo Ana", "re: me llamo Ana", "¿te acordás?"]


def test_a_write_that_fails_keeps_the_history_in_memory():
    store = MemoryStore()
    manager, provider, clock = build(store=store)
    chat = fired(manager.open("tcp", "127.0.0.1"))
    store.set_available(False)
    chat.submit("uno")
    provider.answer_all()
    store.set_available(True)
    clock.advance(IDLE_SECONDS)
    assert chat.turns == [("user", "uno"), ("assistant", "re: uno")]
    chat.submit("dos")
    provider.answer_all()
    clock.advance(IDLE_SECONDS)
    chat.submit("tres")
    assert [m["content"] for m in provider.pending[0].messages][1:] == [
        "uno", "re: uno", "dos", "re: dos", "tres"], "the store lacks uno: memory is the truth"


def test_a_conversation_made_while_the_store_is_down_keeps_its_history_in_memory():
    store = MemoryStore()
    manager, provider, clock = build(store=store)
    store.set_available(False)
    chat = fired(manager.open("tcp", "127.0.0.1"))  # numbered by the fallback store
    store.set_available(True)  # back: its writes for an id it does not know succeed
    chat.submit("uno")
    provider.answer_all()
    clock.advance(IDLE_SECONDS)
    chat.submit("dos")
    assert [m["content"] for m in provider.pending[0].messages][1:] == ["uno", "re: uno", "dos"]


def test_an_idle_session_keeps_nothing_per_message():
    manager, provider, clock = build(limits={"rate_max_messages": 10 ** 6})
    chat = fired(manager.open("tcp", "127.0.0.1"))

    def exchange(count: int) -> None:
        for n in range(count):
            chat.submit(f"mensaje {n}")
            provider.answer_all()
            clock.advance(IDLE_SECONDS * (n % 2))  # half of them after an idle spell
        provider.calls.clear()

    # What a message makes (other tests' real-reactor leftovers may add weakrefs and such).
    kinds = {"Deferred", "DelayedCall", "Failure", "Reply", "Submission", "DeltaRelay",
             "RiskState", "Turn", "Conversation", "list", "dict", "tuple", "function",
             "method", "cell"}

    def census() -> Counter:
        # Log events are left out: with no observer begun (tests), Twisted's start-up buffer
        # keeps them; twistd begins logging before the service starts.
        gc.collect()
        return Counter(type(o).__name__ for o in gc.get_objects()
                       if type(o).__name__ in kinds
                       and not (type(o) is dict and "log_format" in o))

    exchange(20)  # past the history window: the store's copy stops growing
    before = census()
    exchange(50)
    clock.advance(2 * IDLE_SECONDS)  # idle: let go within twice the wait
    grown = census()
    grown.subtract(before)
    grown.pop("Counter", None)  # ``before`` itself
    assert {name: n for name, n in grown.items() if n > 0} == {}
    assert chat.turns is None and chat.risk is None and chat._resting is None
    assert chat._pending is None and chat._ready is None and chat._last is None


def connect(factory, number: int):
    protocol = factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", number))
    protocol.makeConnection(transport)
    return protocol


def own_dict(instance) -> bool:
    """The instance's attributes live in a dict of its own (not the class's shared layout)."""
    return any(type(r) is dict and "connected" in r for r in gc.get_referents(instance))


def test_a_burst_of_connections_that_each_say_something_gets_no_attribute_dicts():
    manager, provider, _ = build(limits={"rate_max_messages": 10 ** 6})

    class Fresh(ChatLineProtocol):  # a class no earlier test made instances of
        pass

    class FreshFactory(ChatLineFactory):
        protocol = Fresh

    factory = FreshFactory(manager, ConnectionRegistry(1000, 1000), manager.clock)
    protocols = [connect(factory, n) for n in range(100)]  # accepted in one turn
    for protocol in protocols:
        protocol.dataReceived(b"hola\r\n")
    while provider.pending:  # llm.max_in_flight at a time
        provider.answer_all()
    assert all(p.transport.value().endswith(b"re: hola\r\n") for p in protocols)
    assert [own_dict(p) for p in protocols].count(True) == 0
    assert all(p.backlog is None and p._streamed is None and not p._lines for p in protocols)


def test_twisteds_transport_learns_its_late_attributes_before_the_first_connection():
    class Fresh(Server):  # Twisted's TCP transport, with a layout of its own for this test
        pass

    share_attribute_layout(Fresh, SERVER_LATE_ATTRIBUTES)
    made = []
    for n in range(100):  # as a burst of accepted connections: made first, written later
        transport = object.__new__(Fresh)
        transport.socket, transport.fileno, transport.connected = None, None, 1
        made.append(transport)
    for transport in made:  # the first write and the producer, as Twisted sets them
        transport.dataBuffer, transport.offset = b"", 0
        transport.producer, transport.streamingProducer = None, True
    assert [own_dict(t) for t in made].count(True) == 0


def test_the_attribute_layout_check_would_see_a_late_attribute():
    """The check above can fail: the same burst without the shared names gets dicts."""
    class Fresh(Server):
        pass

    made = [object.__new__(Fresh) for _ in range(100)]
    for transport in made:
        transport.socket, transport.fileno, transport.connected = None, None, 1
    for transport in made:
        transport.dataBuffer, transport.offset = b"", 0
        transport.producer, transport.streamingProducer = None, True
    assert [own_dict(t) for t in made].count(True) > 0


def test_a_read_still_running_when_the_deadline_answers_is_harmless():
    store = MemoryStore()
    manager, provider, clock = build(store=store)
    chat = fired(manager.open("tcp", "127.0.0.1"))
    chat.submit("uno")
    provider.answer_all()
    clock.advance(IDLE_SECONDS)
    assert chat.turns is None
    slow = Deferred()
    store.resume = lambda secret, now: slow  # the file is slow to answer
    reply = chat.submit("dos").reply
    clock.advance(manager.config.llm.reply_deadline_seconds + 1)
    assert reply.called and provider.pending == []  # the fallback answered, no call made
    slow.callback(None)  # the read lands after all: nothing breaks, nothing is sent
    assert provider.pending == []


def test_a_conversation_in_full_flow_is_not_read_back_for_each_message():
    store = MemoryStore()
    manager, provider, clock = build(store=store)
    chat = fired(manager.open("tcp", "127.0.0.1"))
    reads = []
    resume = store.resume
    store.resume = lambda secret, now: reads.append(now) or resume(secret, now)
    for text in ("uno", "dos", "tres"):
        chat.submit(text)
        provider.answer_all()
        clock.advance(IDLE_SECONDS / 2)  # the next message comes before the user is idle
    assert reads == [] and chat.turns is not None
    clock.advance(IDLE_SECONDS)
    assert chat.turns is not None, "the wait started before the last message: checked again"
    clock.advance(IDLE_SECONDS)
    assert chat.turns is None and chat.risk is None and chat._resting is None
    chat.submit("cuatro")
    assert len(reads) == 1
    assert [m["content"] for m in provider.pending[0].messages][-3:] == ["tres", "re: tres",
                                                                        "cuatro"]


def test_the_line_editor_is_kept_only_while_a_line_is_being_typed():
    manager, provider, _ = build()
    factory = ChatLineFactory(manager, ConnectionRegistry(10, 10), manager.clock)
    protocol = connect(factory, 1)
    assert protocol.editor is None, "greeted, nothing typed"
    protocol.dataReceived(b"ho")
    assert protocol.editor is not None and protocol.editor.buffer == b"ho"
    protocol.dataReceived(b"la\r")  # a bare CR: a following LF is still its line end
    assert protocol.editor is not None
    protocol.dataReceived(b"\n")
    assert protocol.editor is None
    protocol.dataReceived(b"\x1b[Achau\r\n")
    assert protocol.editor is None
    provider.answer_all()
    assert [call.text for call in provider.calls] == ["hola", "chau"], "no empty extra line"


class Classifier:
    """The provider the real second opinion asks: records what it is sent, answers "no"."""

    online = True

    def __init__(self) -> None:
        self.asked: list = []

    def complete(self, messages, trace_id, model=None, max_tokens=None):
        self.asked.append(messages[-1]["content"])
        return succeed("no")


def test_the_second_opinion_reads_the_earlier_messages_after_the_history_was_let_go():
    manager, provider, clock = build(safety={"classifier": "auto"})
    classifier = Classifier()
    manager.second_opinion = SecondOpinion(classifier, manager.config.safety, clock)
    chat = fired(manager.open("tcp", "127.0.0.1"))
    for text in ("primer mensaje", "segundo mensaje"):
        chat.submit(text)
        provider.answer_all()
        clock.advance(2 * IDLE_SECONDS)
        assert chat.turns is None
    chat.submit("tercero")
    last = classifier.asked[-1]
    assert "primer mensaje" in last and "segundo mensaje" in last and "tercero" in last
