"""
psicoia/provider/_http.py, CachedEndpoints: one endpoint per provider destination, built the
way Agent's own factory builds it, and the pooled client still talks to the provider through it.
"""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.web.client import URI
from twisted.web.error import SchemeNotSupported

from psicoia.provider._http import CachedEndpoints


def test_the_same_destination_gets_the_same_endpoint():
    endpoints = CachedEndpoints(MemoryReactorClock())
    first = endpoints.endpointForURI(URI.fromBytes(b"http://127.0.0.1:8000/v1/chat/completions"))
    again = endpoints.endpointForURI(URI.fromBytes(b"http://127.0.0.1:8000/v1/models"))
    other = endpoints.endpointForURI(URI.fromBytes(b"http://127.0.0.1:8001/v1/models"))
    assert isinstance(first, HostnameEndpoint)
    assert first is again and other is not first


def test_https_is_tls_over_tcp_and_other_schemes_are_refused():
    endpoints = CachedEndpoints(MemoryReactorClock())
    secure = endpoints.endpointForURI(URI.fromBytes(b"https://api.example.com/v1"))
    assert not isinstance(secure, HostnameEndpoint)  # wrapped in TLS
    assert endpoints.endpointForURI(URI.fromBytes(b"https://api.example.com/v1/x")) is secure
    with pytest.raises(SchemeNotSupported):
        endpoints.endpointForURI(URI.fromBytes(b"ftp://127.0.0.1/"))


def test_it_keeps_a_bounded_number_of_destinations():
    endpoints = CachedEndpoints(MemoryReactorClock())
    for port in range(1, 3 * CachedEndpoints.MAX_KEPT):
        endpoints.endpointForURI(URI.fromBytes(b"http://127.0.0.1:%d/" % port))
    assert len(endpoints._kept) <= CachedEndpoints.MAX_KEPT
