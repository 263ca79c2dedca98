"""History per session and the window of it the model sees (the token budget)."""

from __future__ import annotations

from psicoia.chat.history import build_prompt, estimate_tokens
from psicoia.chat.ports import Turn
from psicoia.storage.memory import MemoryStore
from tests.helpers import fired

SYSTEM = "Sos breve."


def turns(*pairs):
    out = []
    for user, assistant in pairs:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return out


def test_pairs_give_the_same_prompt_as_dicts():
    history = turns(("u1", "a1"), ("u2", "a2"))
    pairs = [(m["role"], m["content"]) for m in history]
    assert build_prompt(SYSTEM, pairs, "u3", 4, 1000, 1) == build_prompt(SYSTEM, history, "u3", 4,
                                                                          1000, 1)


def contents(prompt):
    return [m["content"] for m in prompt]


def test_system_prompt_first_new_message_last():
    prompt = build_prompt(SYSTEM, turns(("a", "b")), "c", 10, 1000, 3)
    assert prompt[0] == {"role": "system", "content": SYSTEM}
    assert prompt[-1] == {"role": "user", "content": "c"}
    assert contents(prompt) == [SYSTEM, "a", "b", "c"]


def test_max_messages_counts_the_new_message():
    history = turns(("u1", "a1"), ("u2", "a2"), ("u3", "a3"))
    assert contents(build_prompt(SYSTEM, history, "u4", 5, 1000, 1)) == [
        SYSTEM, "u2", "a2", "u3", "a3", "u4"]
    # With 4, three older messages would fit, but the window must start with a user turn.
    assert contents(build_prompt(SYSTEM, history, "u4", 4, 1000, 1)) == [SYSTEM, "u3", "a3", "u4"]


def test_only_the_newest_turns_that_fit_the_budget_are_kept():
    history = turns(("1234", "12"), ("1234", "12"))  # 4 + 2 + 4 + 2 tokens at 1 char/token
    assert contents(build_prompt(SYSTEM, history, "123", 50, 9, 1)) == [SYSTEM, "1234", "12", "123"]
    assert contents(build_prompt(SYSTEM, history, "123", 50, 8, 1)) == [SYSTEM, "123"]


def test_a_window_never_starts_with_an_assistant_turn():
    history = turns(("larguísimo mensaje del usuario", "ok"))
    assert contents(build_prompt(SYSTEM, history, "hola", 50, 4, 1)) == [SYSTEM, "hola"]


def test_a_new_message_over_the_budget_is_still_sent_alone():
    prompt = build_prompt(SYSTEM, turns(("a", "b")), "x" * 500, 10, 10, 1)
    assert contents(prompt) == [SYSTEM, "x" * 500]


def test_token_estimate_rounds_up():
    assert estimate_tokens("", 3) == 0
    assert estimate_tokens("abcd", 3) == 2
    assert estimate_tokens("abc", 3) == 1


def test_the_store_keeps_at_most_the_window_per_conversation():
    store = MemoryStore()
    one = fired(store.create(b"1", 0.0))
    two = fired(store.create(b"2", 0.0))
    for index in range(5):
        store.append(one.id, [Turn("user", f"m{index}")], 3, 1.0)
    store.append(two.id, [Turn("user", "otro")], 3, 1.0)
    assert [t.content for t in fired(store.resume(b"1", 2.0)).turns] == ["m2", "m3", "m4"]
    assert [t.content for t in fired(store.resume(b"2", 2.0)).turns] == ["otro"]
    store.clear(one.id, 3.0)
    assert fired(store.resume(b"1", 3.0)).turns == []
    assert fired(store.resume(b"nobody", 3.0)) is None


def test_resume_returns_a_snapshot_not_the_live_list():
    store = MemoryStore()
    conversation = fired(store.create(b"s", 0.0))
    store.append(conversation.id, [Turn("user", "a")], 10, 1.0)
    got = fired(store.resume(b"s", 1.0))
    store.append(conversation.id, [Turn("assistant", "b")], 10, 2.0)
    assert [t.content for t in got.turns] == ["a"]
