"""
Conversations that survive (CONTRACT.md), end to end: real ``twistd`` processes on a real
SQLite file in a temp dir, the fake provider on 127.0.0.1 recording what the model is sent.

- resume after the server is stopped and started again: the model receives the earlier turns,
  and ``Usuario-N`` numbers keep counting;
- ``/olvidar`` removes the text from the database files (their raw bytes are searched);
- with an encryption key, the text never appears in them;
- a database that cannot be opened does not stop the server: it answers, degraded.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from psicoia import texts
from tests.fake_provider import FakeProvider, serve
from tests.test_launch import Twistd, child_env, greeted_client

MARKER = "cormoran-azul-7431"


def config_for(tmp_path: Path, url: str, db: Path, extra: str = "") -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        "server:\n"
        "  tcp: \"tcp:0:interface=127.0.0.1\"\n"
        "  websocket: null\n"
        "  http: null\n"
        "  shutdown_grace_seconds: 1\n"
        f"llm:\n  base_url: \"{url}\"\n  check_model: false\n"
        "safety:\n  classifier: \"off\"\n"
        f"storage:\n  backend: sqlite\n  sqlite_path: \"{db}\"\n" + extra,
        encoding="utf-8")
    return str(path)


def db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


async def run_server(tmp_path, url, db, env_extra=None):
    env = child_env(GROQ_API_KEY="sk-persist", **(env_extra or {}))
    process = Twistd.start(["--config", config_for(tmp_path, url, db)], tmp_path, env)
    return process, await process.port()


async def stop(process) -> None:
    process.signal("TERM")
    assert await process.exit_code() == 0, process.text


def resume_code(client, greeting: int) -> str:
    line = client.lines[greeting - 2]
    assert "/retomar " in line
    return line.split("/retomar ", 1)[1].strip()


@pytest_twisted.ensureDeferred
async def test_a_conversation_resumes_after_a_restart_and_numbers_keep_counting(tmp_path):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    db = tmp_path / "data" / "psicoia.db"
    db.parent.mkdir()
    try:
        process, port = await run_server(tmp_path, url, db)
        try:
            client, greeting = await greeted_client(port)
            assert client.lines[0] == "Usuario-1 conectado."
            code = resume_code(client, greeting)
            client.say(f"me llamo {MARKER}")
            await client.wait_lines(greeting + 1)
            client.transport.loseConnection()
            await client.closed
        finally:
            await stop(process)
        assert db.stat().st_mode & 0o777 == 0o600

        process, port = await run_server(tmp_path, url, db)
        try:
            client, greeting = await greeted_client(port)
            number = int(client.lines[0].split("-")[1].split()[0])
            assert number >= 2, "a number is never given to two conversations"
            client.say(f"/retomar {code}")
            lines = await client.wait_lines(greeting + 1)
            assert lines[-1] == texts.RESUMED.format(number=1)
            client.say("¿te acordás cómo me llamo?")
            await client.wait_lines(greeting + 2)
            sent = [m["content"] for m in provider.requests[-1]["json"]["messages"]]
            assert any(MARKER in content for content in sent[1:-1]), sent
            client.transport.loseConnection()
            await client.closed
        finally:
            await stop(process)
    finally:
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_forget_removes_the_text_from_the_database_files(tmp_path):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    db = tmp_path / "psicoia.db"
    try:
        process, port = await run_server(tmp_path, url, db)
        try:
            client, greeting = await greeted_client(port)
            client.say(f"te cuento algo privado: {MARKER}")
            await client.wait_lines(greeting + 1)
            for _ in range(50):  # the write is not awaited by the reply: let it land (5 s)
                if MARKER.encode() in db_bytes(db):
                    break
                await deferLater(reactor, 0.1, lambda: None)
            assert MARKER.encode() in db_bytes(db), "stored before /olvidar"
            client.say("/olvidar")
            lines = await client.wait_lines(greeting + 2)
            assert lines[-1].startswith(texts.FORGOTTEN.split("{")[0])
            assert MARKER.encode() not in db_bytes(db), "gone from the .db, -wal and -shm"
        finally:
            await stop(process)
        assert MARKER.encode() not in db_bytes(db)
    finally:
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_with_a_key_the_text_never_reaches_the_files(tmp_path):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    db = tmp_path / "psicoia.db"
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    try:
        process, port = await run_server(tmp_path, url, db, {"STORAGE_ENCRYPTION_KEY": key})
        try:
            client, greeting = await greeted_client(port)
            client.say(f"algo muy mío: {MARKER}")
            await client.wait_lines(greeting + 1)
            client.say("otra cosa")
            await client.wait_lines(greeting + 2)
        finally:
            await stop(process)
        assert db.exists() and MARKER.encode() not in db_bytes(db)
        assert key not in process.text and MARKER not in process.text
    finally:
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_unusable_database_path_does_not_stop_the_server(tmp_path):
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    db = blocker / "psicoia.db"
    try:
        process, port = await run_server(tmp_path, url, db)
        try:
            client, greeting = await greeted_client(port)
            client.say("hola")
            lines = await client.wait_lines(greeting + 1)
            assert lines[-1].startswith("Te escucho")
        finally:
            await stop(process)
        assert "storage degraded" in process.text
    finally:
        await provider_port.stopListening()
