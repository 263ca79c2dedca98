"""RedisStore against a real redis-server: the IConversationStore contract, TTLs, encryption,
numbers unique across instances, and StorageUnavailable (never a hang) while Redis is down."""

from __future__ import annotations

import base64
import dataclasses

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from psicoia import config as config_module
from psicoia.chat.ports import IConversationStore, StorageUnavailable, Turn
from psicoia.storage.redis import RedisStore
from psicoia.storage.redis_backend import RedisBackend
from psicoia.storage.redis_link import RedisLink, parse_url
from tests.helpers import make_config
from tests.redis_support import eventually, redis_server  # noqa: F401 (fixture)


class ReversingCipher:
    """A trivial stand-in for TextCipher: proves the text is sealed and opened, with context."""

    def seal(self, text: str, context: str) -> bytes:
        return (context + "|" + text[::-1]).encode("utf-8")

    def open(self, blob: bytes, context: str) -> str:
        got, text = blob.decode("utf-8").split("|", 1)
        assert got == context
        return text[::-1]


def make_store(server, cipher=None, retention=3600.0):
    link = RedisLink(server.url, reactor, timeout=1.0, probe_seconds=0.1)
    return RedisStore(link, retention, cipher=cipher)


def test_parse_url():
    assert parse_url("redis://:pw@example.org:6380/2") == {
        "host": "example.org", "port": 6380, "dbid": 2, "password": "pw"}
    assert parse_url("unix:///run/redis.sock?db=1") == {
        "path": "/run/redis.sock", "dbid": 1, "password": None}


@pytest_twisted.ensureDeferred
async def test_store_round_trip(redis_server):
    store = make_store(redis_server)
    try:
        assert verifyObject(IConversationStore, store)
        assert store.health == "ok"
        made = await store.create(b"\x01" * 32, 1000.0)
        await store.append(made.id, [Turn("user", "hola"), Turn("assistant", "¿cómo estás?")],
                           10, 1001.0)
        await store.append(made.id, [Turn("user", "mal"), Turn("assistant", "contame")], 3, 1002.0)
        await store.save_risk(made.id, {"reminders": 2}, 1003.0)
        found = await store.resume(b"\x01" * 32, 1004.0)
        assert (found.id, found.number) == (made.id, made.number)
        assert [t.content for t in found.turns] == ["¿cómo estás?", "mal", "contame"]
        assert found.risk == {"reminders": 2} and found.updated_at == 1003.0
        assert await store.resume(b"\x02" * 32, 1004.0) is None
        await store.clear(made.id, 1005.0)
        assert (await store.resume(b"\x01" * 32, 1006.0)).turns == []
        await store.forget(made.id)
        assert await store.resume(b"\x01" * 32, 1007.0) is None
        # A forgotten conversation is not brought back by a late write.
        await store.append(made.id, [Turn("user", "tarde")], 10, 1008.0)
        assert redis_server.command("KEYS", "psicoia:turns:*") == b"*0\r\n"
        assert await store.purge(0) == 0
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_retention_is_a_ttl_renewed_by_each_message(redis_server):
    store = make_store(redis_server, retention=7200)
    try:
        made = await store.create(b"\x03" * 32, 1.0)
        await store.append(made.id, [Turn("user", "hola")], 10, 2.0)
        for key in (f"psicoia:conv:{made.id}", f"psicoia:turns:{made.id}",
                    "psicoia:secret:" + (b"\x03" * 32).hex()):
            ttl = int(redis_server.command("TTL", key)[1:].split(b"\r")[0])
            assert 7100 < ttl <= 7200, key
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_text_is_sealed_at_rest(redis_server):
    store = make_store(redis_server, cipher=ReversingCipher())
    try:
        made = await store.create(b"\x04" * 32, 1.0)
        await store.append(made.id, [Turn("user", "secreto")], 10, 2.0)
        raw = redis_server.command("LRANGE", f"psicoia:turns:{made.id}", "0", "-1")
        assert b"secreto" not in raw and b"oterces" not in raw
        found = await store.resume(b"\x04" * 32, 3.0)
        assert found.turns == [Turn("user", "secreto")]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_numbers_are_unique_across_instances(redis_server):
    stores = [make_store(redis_server) for _ in range(3)]
    try:
        made = []
        for round_ in range(5):
            for index, store in enumerate(stores):
                made.append(store.create(bytes([round_, index]) * 16, 1.0))
        numbers = [(await d).number for d in made]
        assert len(set(numbers)) == 15
    finally:
        for store in stores:
            await store.close()


@pytest_twisted.ensureDeferred
async def test_down_fails_fast_and_comes_back(redis_server):
    store = make_store(redis_server)
    changes = []
    store.link.subscribe(changes.append)
    try:
        await store.create(b"\x05" * 32, 1.0)
        await eventually(lambda: len(store.reserve) == RedisStore.RESERVE)
        redis_server.stop()
        await eventually(lambda: not store.link.up, timeout=3)
        # A conversation still starts, numbered from the reserve; other writes fail fast.
        local = await store.create(b"\x06" * 32, 2.0)
        assert local.number in range(2, 2 + RedisStore.RESERVE)
        try:
            await store.append(local.id, [Turn("user", "hola")], 10, 2.0)
        except StorageUnavailable:
            pass
        else:
            raise AssertionError("a write to a stopped Redis must fail")
        store.reserve.clear()
        try:
            await store.create(b"\x08" * 32, 2.0)
        except StorageUnavailable:
            pass
        else:
            raise AssertionError("no reserve, no Redis: no number")
        assert store.health == "degraded"
        redis_server.start()
        # txredisapi reconnects with backoff (first retry after about a second).
        await eventually(lambda: store.link.up, timeout=15)
        assert changes == [False, True]
        assert (await store.create(b"\x07" * 32, 3.0)).number >= 1
    finally:
        await store.close()


def test_a_redis_url_of_another_scheme_is_a_config_error(tmp_path):
    (tmp_path / "c.yaml").write_text('storage:\n  redis_url: "http://127.0.0.1:6379"\n')
    with pytest.raises(config_module.ConfigError, match="redis_url"):
        config_module.load(path=str(tmp_path / "c.yaml"), environ={}, cwd=tmp_path)


@pytest_twisted.ensureDeferred
async def test_txredisapi_still_has_what_the_link_reads(redis_server):
    """RedisLink.connected() reads txredisapi's private pool (psicoia.storage.redis_link)."""
    link = RedisLink(redis_server.url, reactor)
    try:
        await link.call("ping")
        assert hasattr(link.connection, "_factory") and link.connection._factory.pool
        assert link.connected()
    finally:
        await link.close()


@pytest_twisted.ensureDeferred
async def test_with_a_storage_key_the_text_is_aes_gcm_sealed(redis_server):
    """The backend seals with the same TextCipher as SQLite, keyed from the environment."""
    key = base64.urlsafe_b64encode(bytes(range(32))).decode()
    config = dataclasses.replace(
        make_config(storage={"backend": "redis", "redis_url": redis_server.url}),
        storage_key=key)
    backend = RedisBackend.open(config, reactor)
    try:
        made = await backend.store.create(b"\x09" * 32, 1.0)
        await backend.store.append(made.id, [Turn("user", "texto privado")], 10, 2.0)
        raw = redis_server.command("LRANGE", f"psicoia:turns:{made.id}", "0", "-1")
        assert b"privado" not in raw
        found = await backend.store.resume(b"\x09" * 32, 3.0)
        assert found.turns == [Turn("user", "texto privado")]
    finally:
        await backend.close()
