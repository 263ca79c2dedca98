"""The storage section of config.yaml (CONTRACT.md keys), the layering of psicoia.storage, and
a conversation that outlives the process that wrote it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

from psicoia import config as config_module
from psicoia.config import ConfigError
from psicoia.storage.sqlite import NUMBER_BLOCK
from tests.storage_support import open_sqlite

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_contract_ones(tmp_path):
    storage = config_module.load(environ={}, cwd=tmp_path).storage
    assert (storage.backend, storage.sqlite_path, storage.redis_url, storage.retention_hours,
            storage.encryption_key_env) == (
        "sqlite", "psicoia.db", "redis://127.0.0.1:6379/0", 168.0, "STORAGE_ENCRYPTION_KEY")


def test_the_shipped_config_yaml_states_the_defaults():
    shipped = config_module.load(path=str(ROOT / "config.yaml"), environ={})
    assert shipped.storage == config_module.StorageConfig()


def test_yaml_and_env_set_the_storage_keys(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "storage:\n  backend: memory\n  retention_hours: 24\n  sqlite_path: /var/x.db\n")
    loaded = config_module.load(environ={"PSICOIA_STORAGE_SQLITE_PATH": "/data/p.db"},
                                cwd=tmp_path)
    assert loaded.storage.backend == "memory" and loaded.storage.retention_hours == 24.0
    assert loaded.storage.sqlite_path == "/data/p.db"


@pytest.mark.parametrize("yaml_text, complaint", [
    ("storage:\n  backend: postgres\n", "storage.backend: must be one of sqlite, memory, redis"),
    ("storage:\n  retention_hours: 0\n", "storage.retention_hours: must be greater than 0"),
    ("storage:\n  sqlite_path: ''\n", "storage.sqlite_path: must not be empty"),
    ("storage:\n  lease: 3\n", "storage.lease: unknown key"),
])
def test_bad_storage_settings_are_one_line_errors(tmp_path, yaml_text, complaint):
    (tmp_path / "config.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as raised:
        config_module.load(environ={}, cwd=tmp_path)
    assert str(raised.value).startswith(complaint)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("psicoia")}


def test_storage_leans_only_on_chat_ops_config_and_resume_codes_are_pure():
    for path in (ROOT / "psicoia" / "storage").glob("*.py"):
        for name in _imports(path):
            assert name.split(".")[1] in ("chat", "ops", "config", "texts", "storage"), (
                path.name, name)
    resume = ROOT / "psicoia" / "chat" / "resume.py"
    source = resume.read_text(encoding="utf-8")
    assert _imports(resume) == set()
    assert "twisted" not in source and "open(" not in source


_WRITER = """
import os
import sys
from twisted.internet import defer, task
from psicoia.chat.ports import Turn
from psicoia.storage.sqlite import SqliteStore

async def main(reactor):
    store = SqliteStore.open(sys.argv[1], reactor, reactor)
    c = await store.create(b"p" * 32, 1.0)
    await store.append(c.id, [Turn("user", "me llamo Ana"), Turn("assistant", "Hola Ana")], 10, 2.0)
    print(c.number)
    if sys.argv[2] == "clean":
        await store.close()
    else:
        sys.stdout.flush()
        os._exit(0)  # a crash: no close, no give-back

task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("ending", ["clean", "crash"])
async def test_a_conversation_outlives_the_process_that_wrote_it(tmp_path, ending):
    path = tmp_path / "p.db"
    done = subprocess.run([sys.executable, "-c", _WRITER, str(path), ending], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    written = int(done.stdout.split()[-1])
    store = open_sqlite(path)
    try:
        resumed = await store.resume(b"p" * 32, 3.0)
        assert resumed.number == written == 1
        assert [t.content for t in resumed.turns] == ["me llamo Ana", "Hola Ana"]
        later = await store.create(b"q" * 32, 4.0)
        assert later.number == (2 if ending == "clean" else 1 + NUMBER_BLOCK)
    finally:
        await store.close()
