"""
Conversations that survive (CONTRACT.md): /retomar, take-over, /olvidar, at the core.

The real Session and SessionManager on a Clock, with the memory store (the storage backends
have their own tests against real files and a real redis-server).
"""

from __future__ import annotations

import re

from twisted.internet.task import Clock

from psicoia import texts
from psicoia.chat.manager import WrongCodes
from psicoia.chat.ports import SessionListener
from psicoia.chat.resume import ALPHABET, hash_code, new_code, normalize
from psicoia.chat.vocabulary import Kind
from psicoia.storage.memory import MemoryStore
from tests.helpers import fired, history_of, make_config, make_manager
from tests.provider_stub import ControlledProvider

SYSTEM = "Sos breve."


class Recorder(SessionListener):
    def __init__(self) -> None:
        self.taken_over = 0
        self.conversations: list = []

    def on_taken_over(self) -> None:
        self.taken_over += 1

    def on_conversation(self, user, code, turns) -> None:
        self.conversations.append((user, code, [t.content for t in turns]))


def build(**sections):
    clock, provider, store = Clock(), ControlledProvider(), MemoryStore()
    manager = make_manager(make_config(**sections), provider, clock, store=store,
                           system_prompt=SYSTEM)
    return manager, provider, store, clock


def open_session(manager, peer="10.0.0.1"):
    listener = Recorder()
    return fired(manager.open("tcp", peer, listener)), listener


def say(session, text, provider=None, answer=None):
    reply = session.submit(text).reply
    if provider is not None and provider.pending:
        provider.pending[0].answer(answer or f"re: {text}")
    return fired(reply)


def code_in(greeting: list[str]) -> str:
    line = greeting[-2]
    assert "/retomar " in line and "salir" not in line
    return line.split("/retomar ", 1)[1]


# --- codes ------------------------------------------------------------------------------------

def test_codes_are_human_copyable_with_at_least_40_bits():
    code = new_code()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    assert set(code.replace("-", "")) <= set(ALPHABET) and not set("ILOU") & set(code)
    assert len(ALPHABET) ** 10 >= 2 ** 40
    assert len({new_code() for _ in range(2000)}) == 2000


def test_typed_codes_ignore_case_spaces_dashes_and_confusable_letters():
    code = "7QK20-XH4TD"
    assert normalize(" 7qk2o xh4td ") == normalize(code) == "7QK20XH4TD"
    assert hash_code("7qk2oxh4td") == hash_code(code)
    assert normalize("corto") is None and normalize("7QK20-XH4T!") is None


def test_the_greeting_shows_the_code_before_the_last_line():
    manager, _, _, _ = build()
    session, _ = open_session(manager)
    greeting = session.greeting()
    assert greeting[0] == "Usuario-1 conectado." and "salir" in greeting[-1]
    assert normalize(code_in(greeting)) is not None


# --- resume -----------------------------------------------------------------------------------

def test_resume_on_another_connection_continues_the_conversation():
    manager, provider, _, _ = build()
    first, _ = open_session(manager)
    say(first, "me llamo Ana", provider)
    code = code_in(first.greeting())
    first.close()
    second, listener = open_session(manager, "10.0.0.9")
    assert second.user == "Usuario-2"
    reply = say(second, f"/retomar {code.lower()}")
    assert reply.outcome == Kind.COMMAND and reply.text == texts.RESUMED.format(number=1)
    assert second.user == "Usuario-1"
    assert listener.conversations == [("Usuario-1", code, ["me llamo Ana",
                                                                     "re: me llamo Ana"])]
    say(second, "¿te acordás cómo me llamo?", provider)
    sent = [m["content"] for m in provider.calls[-1].messages]
    assert sent == [SYSTEM, "me llamo Ana", "re: me llamo Ana", "¿te acordás cómo me llamo?"]


def test_offline_the_companions_turns_are_the_conversation_a_resume_shows():
    """With no key (quick start 1) the companion answers; a resume (or a reload of the page)
    must show that exchange, as the RESUMED line promises."""
    clock, store = Clock(), MemoryStore()
    manager = make_manager(make_config(api_key=None), None, clock, store=store,
                           system_prompt=SYSTEM)
    first, _ = open_session(manager)
    reply = say(first, "hoy estoy muy cansada del laburo")
    assert reply.outcome == Kind.OFFLINE
    code = code_in(first.greeting())
    first.close()
    second, listener = open_session(manager, "10.0.0.9")
    assert say(second, f"/retomar {code}").text == texts.RESUMED.format(number=1)
    assert listener.conversations == [("Usuario-1", code, ["hoy estoy muy cansada del laburo",
                                                           reply.text])]


def test_offline_a_crisis_exchange_is_part_of_the_conversation_a_resume_shows():
    """The crisis message and the support line said to it are stored like any offline turn
    (the page redraws them after a reload); the companion's next reply checks in on the
    person instead of going back to the topic before the crisis."""
    clock, store = Clock(), MemoryStore()
    manager = make_manager(make_config(api_key=None), None, clock, store=store,
                           system_prompt=SYSTEM)
    first, _ = open_session(manager)
    say(first, "estoy muy triste, lloro todo el día")
    crisis = say(first, "tomé muchas pastillas")
    assert crisis.tier == "acute"
    after = say(first, "gracias, ya llamé")
    check_in, = [line for line in texts.COMPANION_AFTER_CRISIS if after.text.startswith(line)]
    code = code_in(first.greeting())
    first.close()
    second, listener = open_session(manager, "10.0.0.9")
    say(second, f"/retomar {code}")
    (_, _, shown), = listener.conversations
    assert shown[2:] == ["tomé muchas pastillas", texts.CRISIS_SUPPORT, "gracias, ya llamé",
                         check_in]


def test_resume_keeps_the_crisis_reminder_state():
    manager, provider, _, _ = build()
    first, _ = open_session(manager)
    reply = say(first, "quiero morirme", provider)
    assert reply.crisis
    code = code_in(first.greeting())
    first.close()
    second, _ = open_session(manager)
    say(second, f"/retomar {code}")
    reply = say(second, "hola de nuevo", provider)
    assert texts.CRISIS_REMINDER in reply.text


def test_an_unknown_code_is_a_notice_and_changes_nothing():
    manager, provider, _, _ = build()
    session, listener = open_session(manager)
    say(session, "algo", provider)
    reply = say(session, "/retomar ABCDE-FGHJK")
    assert reply.text == texts.RESUME_UNKNOWN
    assert session.user == "Usuario-1" and len(history_of(session)) == 2
    assert listener.conversations == []
    assert say(session, "/retomar").text == texts.RESUME_USAGE
    assert say(session, "/retomar no es un código").text == texts.RESUME_UNKNOWN


def test_wrong_codes_from_one_address_are_slowed_down():
    manager, _, _, clock = build()
    session, _ = open_session(manager, "10.0.0.7")
    other, _ = open_session(manager, "10.0.0.8")
    good = code_in(other.greeting())
    for _ in range(WrongCodes.ALLOWED):
        assert say(session, "/retomar ABCDE-FGHJK").text == texts.RESUME_UNKNOWN
    # Now even a good code is not checked from that address, for a while.
    assert say(session, f"/retomar {good}").text == texts.RESUME_SLOW_DOWN
    fresh, _ = open_session(manager, "10.0.0.7")
    assert say(fresh, f"/retomar {good}").text == texts.RESUME_SLOW_DOWN, "per address"
    clock.advance(WrongCodes.WINDOW_SECONDS + 1)
    assert say(session, f"/retomar {good}").text == texts.RESUMED.format(number=2)


def test_the_newer_connection_takes_the_conversation_over():
    manager, _, _, _ = build()
    old, old_listener = open_session(manager)
    code = code_in(old.greeting())
    new, _ = open_session(manager)
    say(new, f"/retomar {code}")
    assert old_listener.taken_over == 1 and old.closed
    assert new.user == "Usuario-1"
    assert say(new, f"/retomar {code}").text == texts.RESUME_SAME


def test_numbers_are_never_reused_after_a_resume():
    manager, _, _, _ = build()
    first, _ = open_session(manager)
    code = code_in(first.greeting())
    second, _ = open_session(manager)
    say(second, f"/retomar {code}")
    third, _ = open_session(manager)
    assert third.user == "Usuario-3"


# --- forget -----------------------------------------------------------------------------------

def test_forget_deletes_the_conversation_and_starts_a_new_one():
    manager, provider, store, _ = build()
    session, listener = open_session(manager)
    say(session, "algo muy privado", provider)
    old_code = code_in(session.greeting())
    reply = say(session, "/olvidar")
    assert reply.outcome == Kind.COMMAND
    assert reply.text == texts.FORGOTTEN.format(number=2, code=session.code)
    assert fired(store.resume(hash_code(old_code), 0)) is None, "the old code stops working"
    assert session.user == "Usuario-2" and history_of(session) == []
    assert listener.conversations == [("Usuario-2", session.code, [])]
    say(session, "hola", provider)
    assert [m["content"] for m in provider.calls[-1].messages] == [SYSTEM, "hola"]
    other, _ = open_session(manager)
    assert say(other, f"/retomar {old_code}").text == texts.RESUME_UNKNOWN


def test_commands_are_answered_even_when_rate_limited():
    manager, _, _, _ = build(limits={"rate_max_messages": 1})
    session, _ = open_session(manager)
    say(session, "/ayuda")
    assert say(session, "/olvidar").outcome == Kind.COMMAND
    assert say(session, "/retomar ABCDE-FGHJK").outcome == Kind.COMMAND


def test_while_the_store_is_down_conversations_live_in_memory_with_unused_numbers():
    from psicoia.chat.manager import TEMPORARY_NUMBERS

    manager, _, store, _ = build()
    store.set_available(False)
    session, _ = open_session(manager)
    assert session.number >= TEMPORARY_NUMBERS
    assert say(session, "/ayuda").text == texts.HELP, "it answers"
    store.set_available(True)
    again, _ = open_session(manager)
    assert again.number < TEMPORARY_NUMBERS
