"""History per session and the window of it the model sees (the token budget)."""

from __future__ import annotations

from psicoia.chat.history import InMemoryHistory, build_prompt, estimate_tokens

SYSTEM = "Sos breve."


def turns(*pairs):
    out = []
    for user, assistant in pairs:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return out


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


def test_in_memory_history_is_bounded_per_user_and_separate():
    store = InMemoryHistory(3)
    for index in range(5):
        store.append("Usuario-1", "user", f"m{index}")
    store.append("Usuario-2", "user", "otro")
    assert [m["content"] for m in store.get("Usuario-1")] == ["m2", "m3", "m4"]
    assert [m["content"] for m in store.get("Usuario-2")] == ["otro"]
    store.clear("Usuario-1")
    assert store.get("Usuario-1") == ()
    assert store.get("nobody") == ()


def test_get_returns_a_snapshot_not_the_live_deque():
    store = InMemoryHistory(3)
    store.append("u", "user", "a")
    got = store.get("u")
    store.append("u", "assistant", "b")
    assert [m["content"] for m in got] == ["a"]
