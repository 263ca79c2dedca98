"""Headless Debian Chromium driven by Playwright (sync API) on its own thread.

The server under test runs on the Twisted reactor in the test's thread; Playwright's sync API
blocks, and its objects belong to the thread that created them. So every browser action runs on
one dedicated thread (:class:`BrowserThread`), and the test awaits a Deferred for it while the
reactor keeps serving the page. Shared by tests/test_browser.py and tests/screenshots.py.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from typing import Any, Callable, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> Optional[str]:
    """Debian's chromium (never a Playwright-downloaded browser)."""
    for candidate in (os.environ.get("PSICOIA_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class BrowserThread:
    """One thread owning Playwright, a browser and its pages; ``call`` runs work there."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._jobs: "queue.Queue[Optional[tuple[Callable, Deferred]]]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="playwright", daemon=True)
        self.playwright: Any = None
        self.browser: Any = None

    def start(self) -> Deferred:
        self._thread.start()
        return self.call(self._launch)

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path=self.executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000)

    def call(self, work: Callable[[], Any]) -> Deferred:
        """Run ``work()`` on the browser thread; the Deferred fires on the reactor thread."""
        done: Deferred = Deferred()
        self._jobs.put((work, done))
        return done

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            work, done = job
            try:
                result = work()
            except BaseException:  # handed to the test as a failure, never lost in the thread
                failure = Failure()
                reactor.callFromThread(done.errback, failure)
            else:
                reactor.callFromThread(done.callback, result)

    def _shutdown(self) -> None:
        if self.browser is not None:
            self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()

    async def stop(self) -> None:
        try:
            await self.call(self._shutdown)
        finally:
            self._jobs.put(None)


# --- a scripted psicoia.v1 server, for what the real server does not send (yet) -------------


def scripted_site(script: Callable[["ScriptedChat", dict], None],
                  greeting: Optional[dict] = None) -> tuple[Any, list]:
    """The page's files plus ``/ws`` speaking psicoia.v1 from a script.

    ``script(protocol, event)`` runs for every JSON event the page sends; the protocol has
    ``send(type, **fields)``, ``later(seconds, fn)`` and ``close(code)``. On connect it sends
    ``greeting`` (defaults below, overridable). Returns (site, connections): every protocol
    that connected, in order.
    """
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.twisted.resource import WebSocketResource

    from twisted.web.server import Site

    from psicoia.transports.http import content_security_policy, web_root
    from psicoia.transports.static import PageRoot, load_page

    connections: list = []
    base = {"user": "Usuario-7", "lines": ["Usuario-7 conectado.", "Hola, soy PsicoIA.",
                                           "Cuando quieras irte, escribí salir."],
            "protocol": "psicoia.v1", "max_message_bytes": 4096, "resume_token": "AAAAA-BBBBB",
            "kinds": ["answered", "command", "offline"],
            "conversational": ["answered", "command", "offline"], "helplines": []}
    base.update(greeting or {})

    class ScriptedChat(WebSocketServerProtocol):
        def onConnect(self, request):
            self.received: list = []
            self.calls: list = []
            return "psicoia.v1" if "psicoia.v1" in request.protocols else None

        def onOpen(self):
            connections.append(self)
            self.send("greeting", **base)

        def send(self, event_type: str, **fields: Any) -> None:
            event = {"type": event_type, "trace_id": base["user"]}
            event.update(fields)
            self.sendMessage(json.dumps(event, ensure_ascii=False).encode("utf-8"))

        def later(self, seconds: float, work: Callable[[], Any]) -> None:
            self.calls.append(reactor.callLater(seconds, work))

        def close(self, code: int = 1000) -> None:
            self.sendClose(code)

        def onMessage(self, payload, isBinary):
            event = json.loads(payload.decode("utf-8"))
            self.received.append(event)
            script(self, event)

        def onClose(self, wasClean, code, reason):
            for call in self.calls:
                if call.active():
                    call.cancel()

    factory = WebSocketServerFactory()
    factory.protocol = ScriptedChat
    class PageSite(Site):
        """The page as the real site serves it (same files, same Content-Security-Policy)."""

        noisy = False

        def log(self, request) -> None:
            pass

        def getResourceFor(self, request):
            host = request.getHeader(b"host")
            request.setHeader(b"Content-Security-Policy", content_security_policy(
                host.decode("latin-1") if host else None))
            return super().getResourceFor(request)

    root = PageRoot(load_page(web_root()))
    root.putChild(b"ws", WebSocketResource(factory))
    return PageSite(root), connections
