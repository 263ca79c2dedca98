"""
A session's history window: in memory while its user is being answered, in the store while
they are idle.

An idle connection costs RAM for as long as its user stays connected (up to
``limits.idle_timeout_seconds``), and most of the time a user is reading or typing. So once
no message of the user has arrived for :data:`IDLE_SECONDS` (checked by one timer per quiet
spell: within twice that) and every turn of the window is confirmed written, the session lets
go of its copy (:func:`release`); the next message reads
the window back from the store (:func:`recall`, started when the message arrives) before the
model is asked, so the model sees the same turns it would have seen. With the ``memory``
backend the store is this process's RAM and the read costs no hop: the session just does not
keep a second copy. The wait spares a conversation in full flow a read per message (about
40 us of CPU batched, 110 us alone, with SQLite: bench/analysis.md).

``Session.turns`` is therefore one of: a list of ``(role, content)`` pairs (in memory), the
shared empty tuple (the window is empty: nothing to read), or None (the window is in the
store). The copy stays in memory for good, as before this module, when the store cannot be
trusted with it: the conversation was made while the store was degraded (it may live in the
fallback store only) or a write of its turns failed (the store lacks turns the model saw).

The store is read through ``IConversationStore.resume`` with the conversation's own resume
secret: every backend has it, and it answers the live conversation with its window. On Redis
that read also announces a claim, which the other instances ignore (none holds it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from twisted.internet.defer import Deferred, succeed

from psicoia.chat import resume
from psicoia.chat.ports import Conversation, Turn
from psicoia.chat.risk_values import unsaved

if TYPE_CHECKING:  # the session imports this module; annotations only
    from psicoia.chat.session import Session

EMPTY: tuple = ()
# A user silent this long after their last reply is idle (Session.rest).
IDLE_SECONDS = 2.0


def window(turns) -> list | tuple:
    """``(role, content)`` pairs from stored turns: a list, or :data:`EMPTY` for none."""
    return [(turn.role, turn.content) for turn in turns] if turns else EMPTY


def is_empty(session: "Session") -> bool:
    """The window holds no turn (and none is in the store)."""
    return session.turns is not None and not session.turns


def recall(session: "Session") -> Deferred:
    """Deferred[None], fired once ``session.turns`` holds the window (at once when it does).

    One store read however many callers wait for it. A read that fails leaves the window
    empty for this message (the store reports its own failure; the new turns are then not
    confirmed either, so the session keeps them from then on).
    """
    if session.turns is not None:
        return succeed(None)
    waiter: Deferred = Deferred()
    if session._loading is not None:
        session._loading.append(waiter)
        return waiter
    session._loading = [waiter]
    manager = session.manager
    read = manager.store.resume(resume.hash_code(session.code), manager.clock.seconds())
    read.addCallbacks(_read, _unread, callbackArgs=(session, session.conversation_id),
                      errbackArgs=(session, session.conversation_id))
    return waiter


def _read(conversation: Optional[Conversation], session: "Session", asked_for: str) -> None:
    if session.turns is None and session.conversation_id == asked_for:
        found = conversation is not None and conversation.id == asked_for
        session.turns = window(conversation.turns) if found else EMPTY
    _wake(session)


def _unread(failure, session: "Session", asked_for: str) -> None:
    session.manager.storage_failed(failure)
    if session.turns is None and session.conversation_id == asked_for:
        session.turns = EMPTY
    _wake(session)


def _wake(session: "Session") -> None:
    waiters, session._loading = session._loading or [], None
    for waiter in waiters:
        waiter.callback(None)
    # Not let go of here: the message it was read for may not be queued yet (a store that
    # answers at once). One read for a message already answered (a deadline) stays until
    # the next reply settles.


def remember(session: "Session", text: str, answer: str) -> None:
    """Add one exchange to the window the model sees, and to the store (not awaited: the
    reply never waits on the disk; a failure is the store's to report). The crisis state's
    change since it was last saved (the message's arrival read it) goes in the same write."""
    manager = session.manager
    keep = manager.config.history.max_messages
    turns = session.turns
    if turns is not None:  # None: only the offline companion's turns, straight to the store
        if not isinstance(turns, list):
            turns = session.turns = []
        turns.append(("user", text))
        turns.append(("assistant", answer))
        del turns[:max(0, len(turns) - keep)]
    write(session, manager.store.append(
        session.conversation_id, (Turn("user", text), Turn("assistant", answer)), keep,
        manager.clock.seconds(), risk=unsaved(session)))


def clear(session: "Session") -> None:
    """``/reset``: the window is emptied, here and in the store."""
    manager = session.manager
    session.turns = EMPTY
    write(session, manager.store.clear(session.conversation_id, manager.clock.seconds()))


def write(session: "Session", written: Deferred) -> None:
    """A write of the window to the store: the copy in memory is let go only once every such
    write is confirmed; one that fails keeps it for good."""
    session._unsaved += 1
    written.addCallbacks(_written, _not_written, callbackArgs=(session,),
                         errbackArgs=(session,))
    session.manager.persist(written)


def _written(result, session: "Session"):
    session._unsaved -= 1
    if session._resting is None:  # confirmed after the idle wait (or while a message is on)
        release(session)
    return result


def _not_written(failure, session: "Session"):
    session._unsaved -= 1
    session._keep = True
    return failure


def release(session: "Session") -> None:
    """Let go of the window if the store holds all of it and no message of the user needs it
    (called once the user is idle, and when a write is confirmed after that)."""
    if (session._pending or session._unsaved or session._keep or session._loading is not None
            or not session.turns):
        return
    session.turns = None
