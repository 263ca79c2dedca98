"""Encryption at rest: the text never reaches the files in clear, a wrong key stops the
start with one line and changes nothing, keys rotate."""

from __future__ import annotations

import base64

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from psicoia import config as config_module
from psicoia.chat.ports import Turn
from psicoia.config import ConfigError
from psicoia.storage import open_store
from psicoia.storage.crypto import TextCipher, UnreadableText, WrongKey, key_id, parse_keys
from psicoia.storage.memory import MemoryStore
from psicoia.storage.sqlite import SqliteStore
from tests.storage_support import (CapturedLog, file_bytes, files_containing, key_text,
                                   marker, new_key, open_sqlite)


def test_sealed_text_opens_only_with_its_key_and_conversation():
    key, other = new_key(), new_key()
    cipher = TextCipher([key])
    blob = cipher.seal("hola Ana", "conv-1")
    assert b"hola" not in blob and blob[:8] == key_id(key)
    assert cipher.open(blob, "conv-1") == "hola Ana"
    with pytest.raises(UnreadableText):
        cipher.open(blob, "conv-2")  # moved to another conversation
    with pytest.raises(UnreadableText):
        TextCipher([other]).open(blob, "conv-1")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(UnreadableText):
        cipher.open(tampered, "conv-1")
    assert cipher.seal("hola Ana", "conv-1") != blob  # fresh nonce each time


@pytest_twisted.ensureDeferred
async def test_with_a_key_the_text_never_appears_in_the_files(tmp_path):
    path = tmp_path / "p.db"
    text = marker()
    store = open_sqlite(path, keys=(new_key(),))
    key = store._cipher
    try:
        c = await store.create(b"s" * 32, 1.0)
        await store.append(c.id, [Turn("user", f"me pasa {text}"),
                                  Turn("assistant", f"te escucho {text}")], 10, 2.0)
        assert files_containing(path, text) == []
        resumed = await store.resume(b"s" * 32, 3.0)
        assert [t.content for t in resumed.turns] == [f"me pasa {text}", f"te escucho {text}"]
    finally:
        await store.close()
    assert files_containing(path, text) == []
    assert key is not None


@pytest_twisted.ensureDeferred
async def test_without_a_key_the_same_check_sees_the_text(tmp_path):
    """The control for the test above: the grep does find clear text."""
    path = tmp_path / "p.db"
    text = marker()
    store = open_sqlite(path)
    try:
        c = await store.create(b"s" * 32, 1.0)
        await store.append(c.id, [Turn("user", text)], 10, 2.0)
        assert files_containing(path, text)
    finally:
        await store.close()


async def _written_with(path, keys, text="hola"):
    store = open_sqlite(path, keys=keys)
    c = await store.create(b"w" * 32, 1.0)
    await store.append(c.id, [Turn("user", text)], 10, 2.0)
    await store.close()
    return c


@pytest_twisted.ensureDeferred
async def test_a_wrong_key_stops_the_start_with_one_line_and_touches_nothing(tmp_path):
    path = tmp_path / "p.db"
    await _written_with(path, (new_key(),))
    before = file_bytes(path)
    with pytest.raises(WrongKey) as raised:
        open_sqlite(path, keys=(new_key(),))
    message = str(raised.value)
    assert "\n" not in message and "STORAGE_ENCRYPTION_KEY" in message
    assert isinstance(raised.value, ConfigError)
    assert file_bytes(path) == before


@pytest_twisted.ensureDeferred
async def test_encrypted_data_and_no_key_stops_the_start(tmp_path):
    path = tmp_path / "p.db"
    await _written_with(path, (new_key(),))
    with pytest.raises(WrongKey, match="no key is set"):
        open_sqlite(path)


@pytest_twisted.ensureDeferred
async def test_the_key_check_value_catches_a_wrong_or_missing_key_with_no_text_left(tmp_path):
    """Even after every sealed message is gone, the file remembers it was encrypted: a lost
    key variable does not silently switch to storing text in clear."""
    path = tmp_path / "p.db"
    key = new_key()
    c = await _written_with(path, (key,))
    store = open_sqlite(path, keys=(key,))
    await store.forget(c.id)
    await store.close()
    before = file_bytes(path)
    with pytest.raises(WrongKey, match="no key is set"):
        open_sqlite(path)
    with pytest.raises(WrongKey, match="none of the configured keys"):
        open_sqlite(path, keys=(new_key(),))
    assert file_bytes(path) == before
    await open_sqlite(path, keys=(key,)).close()


@pytest_twisted.ensureDeferred
async def test_key_rotation_new_key_first_old_key_still_decrypts(tmp_path):
    path = tmp_path / "p.db"
    old, new = new_key(), new_key()
    await _written_with(path, (old,), text="antes")

    store = open_sqlite(path, keys=(new, old))
    c = await store.resume(b"w" * 32, 3.0)
    await store.append(c.id, [Turn("assistant", "después")], 10, 4.0)
    await store.close()

    store = open_sqlite(path, keys=(new, old))
    try:
        assert [t.content for t in (await store.resume(b"w" * 32, 5.0)).turns] == [
            "antes", "después"]
        # While text sealed with the old key remains, dropping that key refuses to start...
        await store.clear(c.id, 6.0)
        await store.append(c.id, [Turn("user", "sólo la nueva")], 10, 7.0)
    finally:
        await store.close()
    # ...and once it is gone (here: /reset; normally retention), the new key alone opens it.
    store = open_sqlite(path, keys=(new,))
    try:
        assert (await store.resume(b"w" * 32, 8.0)).turns == [Turn("user", "sólo la nueva")]
    finally:
        await store.close()
    with pytest.raises(WrongKey):
        open_sqlite(path, keys=(old,))


@pytest_twisted.ensureDeferred
async def test_dropping_a_key_still_in_use_refuses_to_start(tmp_path):
    path = tmp_path / "p.db"
    old, new = new_key(), new_key()
    await _written_with(path, (old,))
    await open_sqlite(path, keys=(new, old)).close()  # rotation started: NEW is recorded
    with pytest.raises(WrongKey, match="1 key"):
        open_sqlite(path, keys=(new,))  # ...but text sealed with OLD is still there


@pytest_twisted.ensureDeferred
async def test_adding_a_key_to_a_clear_database_keeps_old_text_readable(tmp_path):
    path = tmp_path / "p.db"
    await _written_with(path, (), text="en claro")
    store = open_sqlite(path, keys=(new_key(),))
    try:
        c = await store.resume(b"w" * 32, 3.0)
        await store.append(c.id, [Turn("assistant", "cifrado")], 10, 4.0)
        assert [t.content for t in (await store.resume(b"w" * 32, 5.0)).turns] == [
            "en claro", "cifrado"]
    finally:
        await store.close()


@pytest.mark.parametrize("raw", [
    "abc",                                              # too short
    base64.urlsafe_b64encode(b"x" * 16).decode(),       # 16 bytes
    base64.b64encode(b"\xff" * 32).decode(),            # standard, not URL-safe, alphabet
    "ñ" * 44,                                           # not ASCII
    key_text(new_key()) + ",nope",                      # second key broken
])
def test_a_key_in_any_other_form_stops_the_start_with_one_line(tmp_path, raw):
    config = _config(tmp_path, {"STORAGE_ENCRYPTION_KEY": raw})
    with pytest.raises(ConfigError) as raised:
        open_store(config, Clock(), reactor)
    message = str(raised.value)
    assert "\n" not in message and "STORAGE_ENCRYPTION_KEY" in message
    assert raw not in message and "nope" not in message
    assert not (tmp_path / "p.db").exists()  # refused before touching any file


def test_keys_come_from_the_env_var_the_config_names(tmp_path):
    key, old = new_key(), new_key()
    loaded = config_module.load(environ={"MY_KEY": key_text(key, old),
                                         "PSICOIA_STORAGE_ENCRYPTION_KEY_ENV": "MY_KEY"},
                                cwd=tmp_path)
    assert parse_keys("MY_KEY", loaded.storage_key) == (key, old)
    assert key_text(key) not in repr(loaded)
    assert config_module.load(environ={}, cwd=tmp_path).storage_key is None
    assert parse_keys("X", None) == parse_keys("X", " , ") == ()


def _config(tmp_path, environ=None, **storage):
    loaded = config_module.load(environ=environ or {}, cwd=tmp_path)
    storage.setdefault("sqlite_path", str(tmp_path / "p.db"))
    return config_module.replace(loaded, storage=storage)


@pytest_twisted.ensureDeferred
async def test_open_store_warns_once_without_a_key(tmp_path):
    with CapturedLog() as log:
        store = open_store(_config(tmp_path), Clock(), reactor)
    await store.close()
    assert isinstance(store, SqliteStore)
    warnings = [e for e in log.events if e["log_level"].name == "warn"]
    assert len(warnings) == 1 and "unencrypted" in log.text()

    with CapturedLog() as log:
        store = open_store(_config(tmp_path, {"STORAGE_ENCRYPTION_KEY": key_text(new_key())}),
                           Clock(), reactor)
    await store.close()
    assert log.events == []


def test_open_store_memory_backend_and_redis_not_yet(tmp_path):
    store = open_store(_config(tmp_path, backend="memory"), Clock(), reactor)
    assert isinstance(store, MemoryStore)
    with pytest.raises(ConfigError, match="redis"):
        open_store(_config(tmp_path, backend="redis"), Clock(), reactor)


@pytest_twisted.ensureDeferred
async def test_a_tampered_message_fails_only_its_own_resume(tmp_path):
    import sqlite3
    from psicoia.chat.ports import StorageUnavailable
    path = tmp_path / "p.db"
    store = open_sqlite(path, keys=(new_key(),))
    try:
        a = await store.create(b"a" * 32, 1.0)
        b = await store.create(b"b" * 32, 1.0)
        await store.append(a.id, [Turn("user", "uno")], 10, 2.0)
        await store.append(b.id, [Turn("user", "dos")], 10, 2.0)
        other = sqlite3.connect(path)
        (sealed,) = other.execute("SELECT content FROM turns WHERE conversation_id = ?",
                                  (a.id,)).fetchone()
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])  # one bit of the tag
        other.execute("UPDATE turns SET content = ? WHERE conversation_id = ?", (flipped, a.id))
        other.commit()
        other.close()
        first, second = store.resume(b"a" * 32, 3.0), store.resume(b"b" * 32, 3.0)
        with pytest.raises(StorageUnavailable, match="unreadable"):
            await first
        assert (await second).turns == [Turn("user", "dos")]
        assert store.health == "ok"
    finally:
        await store.close()
