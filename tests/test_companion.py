"""The offline companion (psicoia/companion.py), alone and as the session manager's fallback."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from psicoia import texts
from psicoia.chat.companion import Companion, reflect, theme_of
from psicoia.chat.vocabulary import Kind

from tests.helpers import make_manager  # noqa: F401
from tests.helpers import captured_logs, fired, make_config

CONVERSATION = [
    "hola",
    "me siento muy sola desde que me mudé",
    "tengo mucha ansiedad por el parcial",
    "no puedo dormir hace días",
    "ok",
    "mi familia no me entiende",
    "no sé qué hacer con mi vida",
    "estoy triste",
    "ok",
    "gracias",
]
ALL_GROUNDING = [idea for pool in texts.COMPANION_GROUNDING.values() for idea in pool]


def converse(seed: int, lines=CONVERSATION) -> list[str]:
    companion = Companion(seed)
    return [companion.reply(line) for line in lines]


def test_ten_turn_conversation_never_repeats_a_reply_verbatim():
    replies = converse(seed=7)
    assert len(replies) == 10
    assert len(set(replies)) == 10


def test_the_same_message_ten_times_still_gets_ten_different_replies():
    replies = converse(seed=3, lines=["ok"] * 10)
    assert len(set(replies)) == 10


def test_limited_mode_is_said_exactly_once_at_the_start():
    replies = converse(seed=1)
    assert replies[0].startswith(texts.COMPANION_LIMITED)
    assert sum(texts.COMPANION_LIMITED in reply for reply in replies) == 1


def test_every_reply_is_one_line_and_ends_with_one_open_question():
    for seed in range(5):
        for reply in converse(seed):
            assert "\n" not in reply and "\r" not in reply
            assert reply.endswith("?")
            assert reply.count("¿") <= 2  # a reflection may ask "¿es así?" before the question


def test_at_most_one_grounding_idea_per_reply_and_some_are_offered():
    replies = converse(seed=2)
    counts = [sum(idea in reply for idea in ALL_GROUNDING) for reply in replies]
    assert max(counts) == 1
    assert sum(counts) >= 2


def test_deterministic_per_seed_and_different_across_seeds():
    assert converse(seed=11) == converse(seed=11)
    assert converse(seed=11) != converse(seed=12)


@pytest.mark.parametrize("text, theme", [
    ("tengo mucha ansiedad y estoy muy nervioso", "ansiedad"),
    ("estoy muy triste, lloro todo el día", "tristeza"),
    ("me siento sola, no tengo a nadie", "soledad"),
    ("quiero hablar con mi familia y mis amigos", "apoyo"),
    ("no tengo ganas de nada, me falta motivación", "esperanza"),
    ("no puedo dormir, tengo insomnio", "sueno"),
    ("mi jefe me presiona en el laburo", "trabajo"),
    ("el parcial de la facu me tiene mal", "trabajo"),
    ("hola", None),
])
def test_themes_are_recognised(text, theme):
    assert theme_of(text) == theme


@pytest.mark.parametrize("text, reflection", [
    ("me siento muy sola", "te sentís muy sola"),
    ("Estoy cansado de mi trabajo.", "estás cansado de tu trabajo"),
    ("no sé qué hacer con mi vida", "no sabés qué hacer con tu vida"),
    ("no se que hacer", "no sabés que hacer"),
    ("hoy fue raro, tengo miedo de perder a mis amigos", "tenés miedo de perder a tus amigos"),
    ("hola", None),
])
def test_reflection_turns_first_person_into_vos(text, reflection):
    assert reflect(text) == reflection


def test_reflections_say_decis_que_sometimes():
    replies = converse(seed=5, lines=["me siento sola"] * 10)
    assert any("Decís que te sentís sola" in reply for reply in replies)


def test_remembers_the_last_theme_when_a_message_has_none():
    companion = Companion(4)
    companion.reply("tengo mucha ansiedad")
    assert texts.COMPANION_THEMES["ansiedad"] in companion.reply("ok")
    companion.reset()
    assert texts.COMPANION_THEMES["ansiedad"] not in companion.reply("ok")


def test_risk_text_is_never_reflected_back():
    companion = Companion(1)
    reply = companion.reply("estoy pensando en matarme")
    assert "matar" not in reply


def test_every_companion_phrase_is_one_line():
    pools = [texts.COMPANION_LIMITED, *texts.COMPANION_REFLECT,
             *texts.COMPANION_CONTINUE, *texts.COMPANION_THEMES.values()]
    for table in (texts.COMPANION_VALIDATE, texts.COMPANION_GROUNDING,
                  texts.COMPANION_QUESTIONS):
        assert set(table) == {*texts.COMPANION_THEMES, None}
        for pool in table.values():
            pools.extend(pool)
    for phrase in pools:
        assert "\n" not in phrase and phrase.strip() == phrase


# --- as the session manager's fallback ------------------------------------------------------


class Failing:
    """A provider that is up but fails every call (retries exhausted, as the manager sees it)."""

    online = True

    def complete(self, prompt, trace_id) -> Deferred:
        from twisted.internet.defer import fail

        from psicoia.chat.ports import ProviderError

        return fail(ProviderError("status", 503))

    def stream(self, prompt, trace_id, on_delta) -> Deferred:
        return self.complete(prompt, trace_id)


@pytest.mark.parametrize("online", [False, True], ids=["offline", "provider-failing"])
def test_manager_answers_with_the_companion_and_never_logs_its_words(online):
    config = make_config(api_key="k" if online else None)
    provider = Failing() if online else type("Offline", (), {"online": False})()
    manager = make_manager(config, provider, Clock(), system_prompt="sistema")
    session = fired(manager.open("tcp", "127.0.0.1"))
    with captured_logs() as logs:
        first = fired(session.submit("me siento muy sola con mi gato colibrí").reply)
        second = fired(session.submit("ok").reply)
    assert first.outcome == second.outcome == (Kind.FALLBACK if online else Kind.OFFLINE)
    assert first.text.startswith(texts.COMPANION_LIMITED)
    assert "te sentís muy sola con tu gato colibrí" in first.text
    assert texts.COMPANION_LIMITED not in second.text
    assert "colibr" not in logs.getvalue()
    assert "sentís" not in logs.getvalue()


def test_companion_is_per_session_and_seeded_by_the_user_number():
    config = make_config(api_key=None, limits={"rate_max_messages": 100})
    manager = make_manager(config, type("Off", (), {"online": False})(),
                             Clock(), system_prompt="sistema")
    one, two = fired(manager.open("tcp", "a")), fired(manager.open("tcp", "b"))
    first = [fired(one.submit(line).reply).text for line in CONVERSATION]
    second = [fired(two.submit(line).reply).text for line in CONVERSATION]
    assert first == converse(seed=one.number)
    assert second == converse(seed=two.number)


def test_after_a_crisis_reply_the_next_reply_checks_in_instead_of_the_old_topic():
    companion = Companion(seed=3)
    companion.reply("estoy muy triste, lloro todo el día")
    companion.after_crisis()
    assert companion.reply("gracias, ya llamé") in texts.COMPANION_AFTER_CRISIS
    # Only the next reply: then the usual listening, with no old topic to go back to.
    later = companion.reply("ok")
    assert not any(line.split("{")[0] in later for line in texts.COMPANION_CONTINUE)
    assert later not in texts.COMPANION_AFTER_CRISIS


def test_a_theme_in_the_message_after_a_crisis_is_answered_on_its_own_terms():
    companion = Companion(seed=5)
    companion.reply("no duermo nada")
    companion.reply("hola")
    companion.after_crisis()
    reply = companion.reply("me siento muy sola")
    assert reply not in texts.COMPANION_AFTER_CRISIS
