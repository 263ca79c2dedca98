"""The WebSocket Origin check (docs/protocol.md, "Origin rules"): own address, not Host."""

from __future__ import annotations

import pytest

from psicoia.transports.origins import OriginPolicy

PORT = 8000


@pytest.mark.parametrize("origin", [
    None, "",                                # scripts, wscat
    "http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000",
    "http://127.0.0.5:8000",                 # any loopback address
    "http://192.168.1.10:8000",              # the address the connection arrived on
    "http://[::ffff:192.168.1.10]:8000",     # the same, IPv4-mapped
])
def test_own_origins_are_allowed(origin):
    assert OriginPolicy().allows(origin, "192.168.1.10", PORT)


@pytest.mark.parametrize("origin, host_header", [
    # DNS rebinding: the attacker's name re-pointed at us; Host and Origin agree.
    ("http://evil.example:8000", "evil.example:8000"),
    ("https://evil.example", "evil.example"),
    ("http://evil.example", "192.168.1.10:8000"),
    ("http://localhost:8001", "localhost:8001"),      # not our port
    ("http://192.168.1.10:9999", "192.168.1.10:9999"),
    ("http://10.0.0.7:8000", "192.168.1.10:8000"),     # another IP than the one used
    ("ftp://127.0.0.1:8000", None),
    ("null", None),
    ("http://127.0.0.1:notaport", None),
])
def test_foreign_origins_are_refused(origin, host_header):
    assert not OriginPolicy().allows(origin, "192.168.1.10", PORT, host_header)


def test_an_ip_literal_host_is_own_behind_a_port_mapping():
    """Docker: the connection arrives on 172.17.0.2, the browser used the host's address."""
    policy = OriginPolicy()
    assert policy.allows("http://192.168.1.10:8000", "172.17.0.2", PORT, "192.168.1.10:8000")
    assert not policy.allows("http://chat.lan:8000", "172.17.0.2", PORT, "chat.lan:8000")


def test_the_page_ports_are_own_on_the_standalone_listener():
    policy = OriginPolicy(page_ports=lambda: (8000,))
    assert policy.allows("http://127.0.0.1:8000", "127.0.0.1", 8765)
    assert policy.allows("http://127.0.0.1:8765", "127.0.0.1", 8765)
    assert not policy.allows("http://127.0.0.1:8001", "127.0.0.1", 8765)


def test_names_are_allowed_only_when_configured():
    policy = OriginPolicy(("https://chat.example.org",))
    assert policy.allows("https://CHAT.example.org:443", "10.0.0.1", PORT, "chat.example.org")
    assert not policy.allows("http://chat.example.org", "10.0.0.1", PORT, "chat.example.org")
    assert OriginPolicy(("*",)).allows("http://anything.example", "10.0.0.1", PORT)
