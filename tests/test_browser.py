"""A real browser (headless Debian Chromium via Playwright) against the real server.

The server (build_service on ephemeral 127.0.0.1 ports, wired to tests/fake_provider.py) runs on
the reactor; the browser acts on its own thread (tests/browser.py). The test may skip only when
no chromium binary can be found, and then says so loudly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

import pytest
import pytest_twisted

from psicoia import texts
from tests.browser import BrowserThread, find_chromium
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import LOCAL, make_config, port_of, start_service

XSS = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 15_000


def chromium_or_skip() -> str:
    executable = find_chromium()
    if executable is None:
        message = ("SKIPPING the browser test: no chromium binary found "
                   "(apt-get install chromium; .ci/run does it)")
        sys.stderr.write("\n" + "!" * 78 + "\n" + message + "\n" + "!" * 78 + "\n")
        warnings.warn(message)
        pytest.skip(message)
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    return executable


async def serve_page(provider_url: str, http: str = LOCAL):
    config = make_config(server={"tcp": None, "http": http}, llm={"base_url": provider_url})
    service = await start_service(config)
    return service, await port_of(service, "http")


@pytest_twisted.ensureDeferred
async def test_page_chats_shows_waiting_renders_text_only_and_reconnects():
    executable = chromium_or_skip()
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    service, port = await serve_page(url)
    browser = BrowserThread(executable)
    await browser.start()
    state: dict = {"dialogs": []}
    try:
        def open_page():
            page = browser.browser.new_page()
            page.on("dialog", lambda dialog: (state["dialogs"].append(dialog.message),
                                              dialog.dismiss()))
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.wait_for_selector("#status[data-state=open]", timeout=TIMEOUT_MS)
            page.wait_for_selector("#messages .msg.greeting", timeout=TIMEOUT_MS)
            state["page"] = page
            return (page.inner_text("#messages .msg.divider"),
                    page.inner_text("#messages .msg.greeting .text"))

        connected, greeting = await browser.call(open_page)
        assert connected == "Usuario-1 conectado."
        assert greeting.startswith("Hola, soy PsicoIA") and greeting.endswith("escribí salir.")

        # A slow reply: the page shows the waiting indicator, then the reply.
        provider.push(Scripted(body=completion("Gracias por contármelo."), delay=1.0))

        def chat():
            page = state["page"]
            page.fill("#input", "hola, hoy estoy triste")
            page.keyboard.press("Enter")
            page.wait_for_selector("#typing", state="visible", timeout=TIMEOUT_MS)
            waiting = page.inner_text("#typing")
            page.wait_for_selector("#messages .msg.bot", timeout=TIMEOUT_MS)
            page.wait_for_selector("#typing", state="hidden", timeout=TIMEOUT_MS)
            return waiting, page.inner_text("#messages .msg.bot .text"), page.input_value("#input")

        waiting, reply, left_in_input = await browser.call(chat)
        assert "escribiendo" in waiting
        assert reply == "Gracias por contármelo."
        assert left_in_input == ""
        assert provider.requests[-1]["json"]["messages"][-1]["content"] == "hola, hoy estoy triste"

        # Shift+Enter adds a line; the server gets one message, folded.
        provider.push(Scripted(body=completion(XSS)))

        def hostile_reply():
            page = state["page"]
            page.fill("#input", "una línea")
            page.keyboard.press("Shift+Enter")
            page.keyboard.type("y otra")
            page.keyboard.press("Enter")
            page.locator("#messages .msg.bot").nth(1).wait_for(timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)  # give an injected onerror handler the chance to run
            return (page.locator("#messages .msg.bot .text").last.inner_text(),
                    page.locator("#messages img").count(),
                    page.locator("#messages .msg.user .text").last.inner_text())

        text, images, sent = await browser.call(hostile_reply)
        assert text == XSS
        assert images == 0
        assert state["dialogs"] == []
        assert sent == "una línea\ny otra"
        assert provider.requests[-1]["json"]["messages"][-1]["content"] == "una línea y otra"

        # A message at risk: the reply with the resources stands out and is announced at once.
        def crisis_reply():
            page = state["page"]
            page.fill("#input", "me quiero morir")
            page.keyboard.press("Enter")
            bubble = page.locator("#messages .msg.bot").nth(2)
            bubble.wait_for(timeout=TIMEOUT_MS)
            previous = page.locator("#messages .msg.bot").nth(1)
            style = ("(el) => { const s = getComputedStyle(el); "
                     "return [s.borderLeftWidth, s.backgroundColor]; }")
            return (bubble.get_attribute("class"),
                    bubble.locator("[role=alert]").evaluate("(el) => el.innerText.split('\\n')[0]"),
                    bubble.locator(".text").inner_text(), bubble.evaluate(style),
                    previous.get_attribute("class"), previous.locator("[role=alert]").count(),
                    previous.evaluate(style), page.locator("#messages img").count())

        (classes, role, text, style, calm_classes, calm_role, calm_style,
         images) = await browser.call(crisis_reply)
        resources = texts.CRISIS_RESOURCES.format(
            resources="; ".join(service.config.safety.resources))
        assert "crisis" in classes.split() and role == text  # the text is in the alert
        # The text up to its resources, which follow as a list of links (test below).
        assert f"{text} {'; '.join(service.config.safety.resources)}." == (
            f"Te escucho. ¿Qué sentís? (15) {resources}")
        assert text.endswith("en soledad:")
        assert "crisis" not in calm_classes.split() and calm_role == 0
        assert style[0] == "6px" and style != calm_style
        assert images == 0

        # The server restarts on the same port: the page notices, then reconnects by itself.
        await service.stopService()

        def sees_the_drop():
            page = state["page"]
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            return page.inner_text("#connection-note")

        assert "conexión" in await browser.call(sees_the_drop)
        service, _ = await serve_page(url, http=f"tcp:{port}:interface=127.0.0.1")

        def reconnects():
            page = state["page"]
            page.wait_for_selector("#status[data-state=open]", timeout=TIMEOUT_MS)
            page.wait_for_selector("#connection-note", state="hidden", timeout=TIMEOUT_MS)
            # Greeted, and the resume answered (a new conversation with memory storage, the same
            # one with stored conversations): the page lets the person write again.
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            replies = page.locator("#messages .msg.bot").count()
            return say(page, "sigo acá", replies)

        assert (await browser.call(reconnects)).startswith("Te escucho.")
    finally:
        await browser.stop()
        if service.running:
            await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_page_counter_follows_the_servers_limit_and_blocks_too_long(tmp_path):
    executable = chromium_or_skip()
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    config = make_config(server={"tcp": None, "http": LOCAL}, llm={"base_url": url},
                         limits={"max_line_bytes": 20})
    service = await start_service(config)
    port = await port_of(service, "http")
    browser = BrowserThread(executable)
    await browser.start()
    try:
        def check():
            page = browser.browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#messages .msg.greeting", timeout=TIMEOUT_MS)
            page.fill("#input", "ñandú 😀")  # 7 characters as a person counts them, 12 bytes
            counter = (page.inner_text("#counter"), page.is_disabled("#send"))
            page.fill("#input", "x" * 21)
            over = (page.inner_text("#counter"), page.is_disabled("#send"),
                    page.is_visible("#too-long"), page.get_attribute("#input", "aria-invalid"))
            page.keyboard.press("Enter")  # refused by the page: nothing is sent
            left = page.input_value("#input")
            # Few characters, but over the server's limit in UTF-8: blocked, and said kindly.
            page.fill("#input", "ñ" * 15)
            wide = (page.inner_text("#counter"), page.is_disabled("#send"),
                    page.inner_text("#too-long"))
            page.keyboard.press("Enter")
            return counter, over, left, wide, page.inner_text("#composer")

        counter, over, still, wide, composer = await browser.call(check)
        assert counter == ("7 / 20", False)
        assert over == ("21 / 20", True, True, "true")
        assert still == "x" * 21
        assert wide[:2] == ("15 / 20", True) and "emojis y algunas letras" in wide[2]
        assert "bytes" not in composer
        assert provider.requests == []
    finally:
        await browser.stop()
        await service.stopService()
        await provider_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_screenshots_light_dark_desktop_phone(tmp_path):
    """Takes the README screenshots. PSICOIA_SCREENSHOTS=docs/screenshots writes them there."""
    executable = chromium_or_skip()
    from tests.screenshots import take_screenshots

    target = Path(os.environ.get("PSICOIA_SCREENSHOTS") or tmp_path)
    written = await take_screenshots(executable, target)
    assert len(written) == 6
    for path in written:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


@pytest_twisted.ensureDeferred
async def test_page_follows_new_messages_only_when_scrolled_to_the_bottom():
    executable = chromium_or_skip()
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    config = make_config(server={"tcp": None, "http": LOCAL}, llm={"base_url": url},
                         limits={"rate_max_messages": 50})
    service = await start_service(config)
    port = await port_of(service, "http")
    browser = BrowserThread(executable)
    await browser.start()
    at_bottom = ("(chat) => chat.scrollHeight - chat.scrollTop - chat.clientHeight < 4")
    try:
        def check():
            context = browser.browser.new_context(viewport={"width": 390, "height": 600})
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#messages .msg.greeting", timeout=TIMEOUT_MS)
            for index in range(6):
                page.fill("#input", f"mensaje número {index}")
                page.keyboard.press("Enter")
                page.locator("#messages .msg.bot").nth(index).wait_for(timeout=TIMEOUT_MS)
            chat = page.locator("#chat")
            followed = chat.evaluate(at_bottom)
            chat.evaluate("(chat) => { chat.scrollTop = 0; }")
            page.fill("#input", "uno más")
            page.keyboard.press("Enter")
            page.locator("#messages .msg.bot").nth(6).wait_for(timeout=TIMEOUT_MS)
            result = (followed, chat.evaluate("(chat) => chat.scrollTop"),
                      chat.evaluate("(chat) => chat.scrollHeight > chat.clientHeight"))
            context.close()
            return result

        followed, top_after, scrollable = await browser.call(check)
        assert scrollable
        assert followed is True
        assert top_after == 0  # the reader scrolled up to read: the page left them there
    finally:
        await browser.stop()
        await service.stopService()
        await provider_port.stopListening()


# --- helpers for the tests below -------------------------------------------------------------

AXE = Path(__file__).parent / "vendor" / "axe.min.js"


class Running:
    """A real server (fake provider behind it) and a browser, stopped together."""

    def __init__(self, provider: FakeProvider, provider_port, service, port: int,
                 browser: BrowserThread) -> None:
        self.provider = provider
        self.provider_port = provider_port
        self.service = service
        self.port = port
        self.browser = browser
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        try:
            await self.browser.stop()
        finally:
            for request in self.provider.hanging:
                if not request.finished and not getattr(request, "_disconnected", False):
                    request.finish()
            if self.service.running:
                await self.service.stopService()
            await self.provider_port.stopListening()


async def running(**sections) -> Running:
    executable = chromium_or_skip()
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    llm = {"base_url": url}
    llm.update(sections.pop("llm", {}))
    config = make_config(server={"tcp": None, "http": LOCAL}, llm=llm, **sections)
    service = await start_service(config)
    port = await port_of(service, "http")
    browser = BrowserThread(executable)
    await browser.start()
    return Running(provider, provider_port, service, port, browser)


def open_chat(browser: BrowserThread, url: str, width: int = 390, height: int = 700,
              scheme: str = "light", **options):
    """A new context and page at ``url``, greeted (on the browser thread)."""
    context = browser.browser.new_context(viewport={"width": width, "height": height},
                                          color_scheme=scheme, **options)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#status[data-state=open]", timeout=TIMEOUT_MS)
    page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
    return context, page


def say(page, text: str, replies_before: int) -> str:
    """Send ``text`` and wait for PsicoIA's next bubble; its text."""
    page.fill("#input", text)
    page.keyboard.press("Enter")
    bubble = page.locator("#messages .msg.bot").nth(replies_before)
    bubble.wait_for(timeout=TIMEOUT_MS)
    return bubble.locator(".text").inner_text()


def drop_websockets(service) -> int:
    """Abort every WebSocket of the server (no close frame: the page sees 1006)."""
    dropped = 0
    for connection in service.registry.connections():
        if connection.transport_name == "websocket":
            connection.transport.abortConnection()
            dropped += 1
    return dropped


def bubbles(page) -> list:
    return page.eval_on_selector_all(
        "#messages .msg.user, #messages .msg.bot",
        "(items) => items.map((li) => [li.classList.contains('user') ? 'user' : 'bot', "
        "li.querySelector('.text').textContent])")


# --- issue 12: resume on reload and reconnect, unanswered messages, forget -------------------


@pytest_twisted.ensureDeferred
async def test_reload_mid_conversation_redraws_the_transcript_and_the_model_remembers():
    run = await running()
    state: dict = {}
    try:
        def before():
            context, page = open_chat(run.browser, run.url)
            state["context"], state["page"] = context, page
            say(page, "me llamo Ana y estoy triste", 0)
            say(page, "hoy discutí con mi hermana", 1)
            return (page.evaluate("localStorage.getItem('psicoia-token')"), bubbles(page))

        token, shown = await browser_call(run, before)
        assert token and len(token.strip('"')) == 11
        assert [who for who, _ in shown] == ["user", "bot", "user", "bot"]

        def reload():
            page = state["page"]
            # The stored copy is drawn at once, before the socket is even open.
            page.reload(wait_until="domcontentloaded")
            at_once = bubbles(page)
            page.wait_for_selector("#messages .msg.divider", timeout=TIMEOUT_MS)
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            after = bubbles(page)
            resumed = page.inner_text("#messages")
            reply = say(page, "¿te acordás cómo me llamo?", 2)
            return at_once, after, resumed, reply, bubbles(page)

        at_once, after, resumed, reply, final = await browser_call(run, reload)
        assert at_once == shown
        assert after == shown  # the server's transcript, the same turns
        assert "Seguimos nuestra charla, Usuario-1" in resumed
        assert "Usuario-2" not in resumed  # no new conversation
        assert reply.startswith("Te escucho. ¿Qué sentís?")
        assert len(final) == 6
        sent = [m["content"] for m in run.provider.requests[-1]["json"]["messages"]]
        assert "me llamo Ana y estoy triste" in sent and "hoy discutí con mi hermana" in sent
        assert sent[-1] == "¿te acordás cómo me llamo?"
    finally:
        await run.stop()


async def browser_call(run: Running, work):
    return await run.browser.call(work)


@pytest_twisted.ensureDeferred
async def test_dropped_websocket_resumes_and_marks_the_message_in_flight_unanswered():
    run = await running()
    state: dict = {}
    try:
        def first():
            context, page = open_chat(run.browser, run.url)
            state["page"] = page
            say(page, "hola, soy Ana", 0)
            page.fill("#input", "esto queda sin respuesta")
            page.keyboard.press("Enter")
            page.wait_for_selector("#typing", state="visible", timeout=TIMEOUT_MS)

        run.provider.push(Scripted(body=completion("Hola Ana.")), Scripted(hang=True))
        await browser_call(run, first)
        assert drop_websockets(run.service) == 1

        def after_reconnect():
            page = state["page"]
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            page.wait_for_selector("#connection-note", state="hidden", timeout=TIMEOUT_MS)
            page.wait_for_selector("#messages .msg.user.unanswered button.resend:not([disabled])",
                                   timeout=TIMEOUT_MS)
            marked = page.locator("#messages .msg.user.unanswered")
            result = (page.inner_text("#messages"), marked.count(),
                      marked.locator(".text").inner_text(), bubbles(page))
            marked.locator("button.resend").click()
            page.locator("#messages .msg.bot").nth(1).wait_for(timeout=TIMEOUT_MS)
            return result + (bubbles(page), page.locator("#messages .unanswered").count())

        text, marked, marked_text, shown, final, left = await browser_call(run, after_reconnect)
        assert "Seguimos nuestra charla, Usuario-1" in text
        assert "Esta respuesta no llegó." in text
        assert marked == 1 and marked_text == "esto queda sin respuesta"
        assert shown[:2] == [["user", "hola, soy Ana"], ["bot", "Hola Ana."]]
        assert final[-2][1] == "esto queda sin respuesta" and final[-2][0] == "user"
        assert final[-1][0] == "bot" and final[-1][1].startswith("Te escucho. ¿Qué sentís?")
        assert left == 0
        assert len(final) == 4  # sent again once: no duplicate bubble
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_restart_with_stored_conversations_continues_on_the_page(tmp_path):
    from psicoia import config as config_module

    if "storage" not in config_module.SECTIONS:
        pytest.skip("needs storage backend")
    storage = {"backend": "sqlite", "sqlite_path": str(tmp_path / "psicoia.db")}
    run = await running(storage=storage)
    state: dict = {}
    try:
        def before():
            context, page = open_chat(run.browser, run.url)
            state["page"] = page
            say(page, "me llamo Ana", 0)
            return bubbles(page)

        shown = await browser_call(run, before)
        config = run.service.config
        await run.service.stopService()
        await browser_call(run, lambda: state["page"].wait_for_selector(
            "#connection-note", state="visible", timeout=TIMEOUT_MS))
        run.service = await start_service(dataclasses.replace(
            config, server=dataclasses.replace(
                config.server, http=f"tcp:{run.port}:interface=127.0.0.1")))

        def after():
            page = state["page"]
            page.wait_for_selector("#connection-note", state="hidden", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => document.getElementById('messages').innerText"
                ".includes('Seguimos nuestra charla')",
                timeout=TIMEOUT_MS)
            redrawn = bubbles(page)
            say(page, "¿te acordás cómo me llamo?", 1)
            return redrawn, page.inner_text("#messages")

        redrawn, text = await browser_call(run, after)
        assert redrawn == shown
        assert "Usuario-1" in text and "Usuario-2" not in text
        sent = [m["content"] for m in run.provider.requests[-1]["json"]["messages"]]
        assert "me llamo Ana" in sent
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_forget_asks_first_then_starts_fresh_and_clears_what_the_page_kept():
    run = await running()
    state: dict = {}
    try:
        def forget():
            context, page = open_chat(run.browser, run.url)
            state["page"] = page
            say(page, "un secreto que no quiero guardar", 0)
            token = page.evaluate("localStorage.getItem('psicoia-token')")
            page.click("#forget")
            asked = page.is_visible("#forget-confirm")
            page.click("#forget-no")  # changed my mind: nothing happens
            kept = (page.is_visible("#forget-confirm"), len(bubbles(page)))
            page.click("#forget")
            page.click("#forget-yes")
            page.wait_for_function(
                "() => document.getElementById('messages').innerText.includes('borré esta charla')",
                timeout=TIMEOUT_MS)
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            after = (page.evaluate("localStorage.getItem('psicoia-token')"),
                     page.evaluate("sessionStorage.getItem('psicoia-transcript')"),
                     bubbles(page), page.inner_text("#messages"))
            page.reload()
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            reloaded = page.inner_text("#messages")
            reply = say(page, "empiezo de nuevo", 0)
            return token, asked, kept, after, reloaded, reply

        token, asked, kept, after, reloaded, reply = await browser_call(run, forget)
        assert asked and kept == (False, 2)
        new_token, stored, shown, text = after
        assert new_token and new_token != token
        assert "secreto" not in (stored or "")
        assert shown == [] and "secreto" not in text and "Usuario-2" in text
        assert "secreto" not in reloaded
        assert reply.startswith("Te escucho. ¿Qué sentís?")
        sent = [m["content"] for m in run.provider.requests[-1]["json"]["messages"]]
        assert "un secreto que no quiero guardar" not in sent
    finally:
        await run.stop()


# --- issue 17: bars never cover a message, the greeting's first line, bursts ------------------

# Bottom of the last bubble (or notice) vs. the visible part of the log and the bar.
GEOMETRY = """() => {
  const chat = document.getElementById('chat').getBoundingClientRect();
  const items = document.querySelectorAll('#messages .msg');
  const last = items[items.length - 1].getBoundingClientRect();
  const note = document.getElementById('connection-note').getBoundingClientRect();
  return {lastTop: last.top, lastBottom: last.bottom, chatTop: chat.top,
          chatBottom: chat.bottom, noteTop: note.top, noteBottom: note.bottom,
          lastText: items[items.length - 1].innerText};
}"""


def fully_visible(box: dict) -> bool:
    return (box["lastBottom"] <= box["chatBottom"] + 1 and box["lastBottom"] <= box["noteTop"] + 1
            and box["lastTop"] >= box["chatTop"] - 1)


@pytest_twisted.ensureDeferred
async def test_connection_bars_never_cover_the_last_message_or_notice():
    run = await running(limits={"rate_max_messages": 50})
    state: dict = {}
    try:
        def chat_a_while():
            context, page = open_chat(run.browser, run.url, width=390, height=600)
            state["page"] = page
            for index in range(5):
                say(page, f"mensaje número {index}", index)
            return page.evaluate("(() => { const c = document.getElementById('chat'); "
                                 "return c.scrollHeight > c.clientHeight; })()")

        assert await browser_call(run, chat_a_while)  # the log scrolls: the bars could cover
        drop_websockets(run.service)

        def lost():
            page = state["page"]
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)
            return page.evaluate(GEOMETRY), page.inner_text("#connection-note")

        box, bar = await browser_call(run, lost)
        assert "Se perdió la conexión" in bar
        assert fully_visible(box), box

        def goodbye():
            page = state["page"]
            page.wait_for_selector("#connection-note", state="hidden", timeout=TIMEOUT_MS)
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            page.fill("#input", "salir")
            page.keyboard.press("Enter")
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)
            return page.evaluate(GEOMETRY), page.inner_text("#connection-note")

        box, bar = await browser_call(run, goodbye)
        assert "La charla terminó" in bar
        assert box["lastText"].endswith("¡hasta pronto!")
        assert fully_visible(box), box
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_idle_timeout_notice_stays_visible_above_the_bar():
    run = await running(limits={"idle_timeout_seconds": 2})
    try:
        def idle():
            context, page = open_chat(run.browser, run.url, width=320, height=480)
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)
            return page.evaluate(GEOMETRY), page.inner_text("#connection-note")

        box, bar = await browser_call(run, idle)
        assert box["lastText"] == texts.IDLE_TIMEOUT
        assert "rato sin mensajes" in bar
        assert fully_visible(box), box
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_greeting_starts_at_its_first_line_at_320_px():
    run = await running()
    try:
        def greeting():
            context, page = open_chat(run.browser, run.url, width=320, height=568,
                                      is_mobile=True, has_touch=True)
            page.wait_for_timeout(300)
            return page.evaluate("""() => {
              const chat = document.getElementById('chat');
              const g = document.querySelector('#messages .msg.greeting').getBoundingClientRect();
              const c = chat.getBoundingClientRect();
              return {top: g.top, bottom: g.bottom, chatTop: c.top, chatBottom: c.bottom,
                      scrollable: chat.scrollHeight > chat.clientHeight};
            }""")

        box = await browser_call(run, greeting)
        assert box["scrollable"], box  # long enough to be cut: the test can fail
        assert box["chatTop"] - 1 <= box["top"] <= box["chatTop"] + 40, box
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_each_reply_of_a_burst_of_eight_comes_right_after_its_message():
    run = await running(limits={"rate_max_messages": 50})
    run.provider.push(*[Scripted(body=completion(f"respuesta {index}"), delay=0.05)
                        for index in range(8)])
    try:
        def burst():
            context, page = open_chat(run.browser, run.url, width=1280, height=800)
            for index in range(8):
                page.fill("#input", f"mensaje {index}")
                page.keyboard.press("Enter")
            page.locator("#messages .msg.bot").nth(7).wait_for(timeout=TIMEOUT_MS)
            return page.eval_on_selector_all(
                "#messages .msg.user, #messages .msg.bot",
                "(items) => items.map((li) => [li.getAttribute('data-ref'), "
                "li.querySelector('.text').textContent])")

        shown = await browser_call(run, burst)
        assert len(shown) == 16
        for index in range(8):
            (user_ref, said), (reply_ref, reply) = shown[2 * index], shown[2 * index + 1]
            assert said == f"mensaje {index}" and reply == f"respuesta {index}"
            assert user_ref == reply_ref
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_crisis_reply_lists_its_helplines_as_tel_links():
    run = await running()
    try:
        def crisis():
            context, page = open_chat(run.browser, run.url)
            say(page, "me quiero morir", 0)
            bubble = page.locator("#messages .msg.bot.crisis")
            return (bubble.locator("[role=alert]").count(),
                    bubble.locator(".helplines li").all_inner_texts(),
                    bubble.locator(".helplines a").evaluate_all(
                        "(links) => links.map((a) => a.getAttribute('href'))"),
                    page.locator("#helplines li").all_text_contents())

        role, items, links, header = await browser_call(run, crisis)
        assert role == 1
        assert items == list(run.service.config.safety.resources)
        assert "tel:024" in links and "tel:135" in links and "tel:08009990091" in links
        assert header == list(run.service.config.safety.resources)
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_recursos_lists_the_helplines_as_tel_links_and_names_no_number_twice():
    run = await running()
    try:
        def resources():
            context, page = open_chat(run.browser, run.url)
            text = say(page, "/recursos", 0)
            bubble = page.locator("#messages .msg.bot").nth(0)
            return (bubble.locator(".helplines li").all_inner_texts(),
                    bubble.locator(".helplines a").evaluate_all(
                        "(links) => links.map((a) => a.getAttribute('href'))"),
                    text, page.locator("#messages .msg.bot.crisis").count())

        items, links, text, crisis = await browser_call(run, resources)
        assert items == list(run.service.config.safety.resources)
        assert "tel:024" in links and "tel:135" in links
        assert "024" not in text and "Del otro lado" in text  # the numbers are the list's
        assert crisis == 0  # a command's answer, not a crisis reply
    finally:
        await run.stop()


# --- issue 13: a streamed reply from the real service grows on the page ---------------------

STREAMED = ["Hola, ", "te ", "escucho. ", "¿Qué ", "pasó ", "hoy?"]


@pytest_twisted.ensureDeferred
async def test_real_service_streams_a_reply_that_grows_and_ends_as_the_streamed_text():
    """The real service (llm.stream on) reading real SSE from the fake provider on 127.0.0.1,
    one chunk every 300 ms: the page's bubble grows over several observations before the final
    ``reply`` event arrives, and the final text is the concatenation of the streamed deltas."""
    from tests.fake_provider import Streamed, stream_frames

    run = await running(llm={"stream": True, "max_retries": 0, "stream_stall_seconds": 5})
    run.provider.push(Streamed(frames=stream_frames(STREAMED), interval=0.3))
    try:
        def stream():
            frames: list = []  # every psicoia.v1 event the page received, in order
            context = run.browser.browser.new_context(viewport={"width": 390, "height": 700})
            page = context.new_page()
            page.on("websocket", lambda socket: socket.on(
                "framereceived", lambda payload: frames.append(json.loads(payload))))
            page.goto(run.url)
            page.wait_for_selector("#status[data-state=open]", timeout=TIMEOUT_MS)
            page.wait_for_selector("#forget:not([disabled])", timeout=TIMEOUT_MS)
            page.fill("#input", "hola")
            page.keyboard.press("Enter")
            bubble = page.locator("#messages .msg.bot")
            bubble.wait_for(timeout=TIMEOUT_MS)
            seen = []  # (text, aria-busy, how many events the page had then, final seen)
            while True:
                text = bubble.locator(".text").text_content()
                busy = bubble.get_attribute("aria-busy")
                final = any(event["type"] == "reply" for event in frames)
                if not seen or seen[-1][:2] != (text, busy):
                    seen.append((text, busy, final))
                if busy is None:
                    break
                page.wait_for_timeout(20)
            return seen, bubble.count(), list(frames)

        seen, count, frames = await browser_call(run, stream)
        deltas = [event["text"] for event in frames if event["type"] == "reply_delta"]
        [final] = [event for event in frames if event["type"] == "reply"]
        growing = [text for text, busy, final_seen in seen if busy == "true" and not final_seen]
        assert len(growing) >= 3, seen  # several observations of a growing bubble
        assert all(len(later) > len(earlier) and later.startswith(earlier)
                   for earlier, later in zip(growing, growing[1:])), seen
        assert all("".join(STREAMED).startswith(text) for text in growing), seen
        assert len(growing[-2]) < len("".join(STREAMED)), "seen growing before it was whole"
        assert len(deltas) >= 3 and final["final"] is True
        assert "".join(deltas) == final["text"] == "".join(STREAMED)
        assert seen[-1][0] == final["text"] and seen[-1][1] is None  # the bubble says the same
        assert count == 1  # the streamed bubble became the reply: no second bubble
        assert len(run.provider.requests) == 1
        assert run.provider.requests[0]["json"]["stream"] is True
    finally:
        await run.stop()


# --- against a scripted psicoia.v1 server: streaming, tiers, kinds, take-over ----------------


class Scripted_:
    """A scripted server and a browser, stopped together."""

    def __init__(self, port, connections, browser) -> None:
        self.port = port
        self.connections = connections
        self.browser = browser
        self.url = f"http://127.0.0.1:{port.getHost().port}/"

    async def stop(self) -> None:
        try:
            await self.browser.stop()
        finally:
            for connection in self.connections:
                if connection.transport is not None:
                    connection.transport.abortConnection()
            await self.port.stopListening()


async def scripted(script, greeting=None) -> Scripted_:
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ServerEndpoint

    from tests.browser import scripted_site

    executable = chromium_or_skip()
    site, connections = scripted_site(script, greeting)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    browser = BrowserThread(executable)
    await browser.start()
    return Scripted_(port, connections, browser)


PIECES = ["Te leo. ", "Contame un poco más ", "de lo que te pasa, ", "sin apuro."]


def streams_a_reply(chat, event) -> None:
    """Every message: accepted, waiting, four reply_delta 250 ms apart, then the final reply."""
    if event.get("type") != "message":
        return
    ref = event["ref"]
    chat.send("accepted", ref=ref)
    chat.send("waiting", ref=ref)
    for index, piece in enumerate(PIECES):
        chat.later(0.25 * (index + 1), lambda piece=piece: chat.send(
            "reply_delta", ref=ref, text=piece))
    chat.later(0.25 * (len(PIECES) + 2), lambda: chat.send(
        "reply", ref=ref, text="".join(PIECES), final=True, crisis=False))


@pytest_twisted.ensureDeferred
async def test_reply_grows_with_reply_delta_and_is_announced_once_complete():
    run = await scripted(streams_a_reply)
    try:
        def stream():
            context, page = open_chat(run.browser, run.url)
            page.fill("#input", "hola")
            page.keyboard.press("Enter")
            seen = []
            bubble = page.locator("#messages .msg.bot")
            bubble.wait_for(timeout=TIMEOUT_MS)
            while True:
                text = bubble.locator(".text").text_content()
                busy = bubble.get_attribute("aria-busy")
                if not seen or seen[-1][0] != text or seen[-1][1] != busy:
                    seen.append((text, busy, page.text_content("#announcer")))
                if busy is None:
                    break
                page.wait_for_timeout(20)
            return seen, bubble.count(), page.text_content("#announcer")

        seen, count, announced = await browser_call(run, stream)
        growing = [text for text, busy, _ in seen if busy == "true"]
        assert len(growing) >= 3, seen  # seen growing, piece by piece
        assert all(later.startswith(earlier) for earlier, later in zip(growing, growing[1:]))
        assert all(said == "" for _, busy, said in seen if busy == "true")  # nothing read yet
        final = seen[-1]
        assert final[0] == "".join(PIECES) == growing[-1]  # the final text is the streamed one
        assert count == 1
        assert announced == "".join(PIECES)  # read once, complete
    finally:
        await run.stop()


ACUTE = [
    {"text": "Emergencias: 112", "phones": [{"shown": "112", "tel": "112"}]},
    {"text": "España: 024", "phones": [{"shown": "024", "tel": "024"}]},
]
# The lines in the middle of the text (as the acute tier words it): the whole text is shown.
ACUTE_TEXT = ("Esto es una emergencia: llamá ahora mismo a Emergencias: 112; España: 024. "
              "Si hay alguien cerca, avisale ya.")
GREETING_LINES = [
    {"text": "Testlandia: Línea Amiga 555-0100", "phones": [{"shown": "555-0100", "tel": "5550100"}]},
    {"text": "Emergencias: 112", "phones": [{"shown": "112", "tel": "112"}]},
]


def answers_by_text(chat, event) -> None:
    """A tiny script: what the page's message says picks the answer."""
    if event.get("type") != "message":
        return
    ref, text = event["ref"], event["text"]
    chat.send("accepted", ref=ref)
    if text == "agudo":
        chat.send("reply", ref=ref, text=ACUTE_TEXT, final=True, crisis=True,
                  tier="acute", helplines=ACUTE)
    elif text == "sin modelo":
        chat.send("notice", ref=ref, kind="offline", text="Sigo acá, contame.", crisis=False)
    elif text == "otro tipo":
        chat.send("notice", ref=ref, kind="charla_nueva", text="Un tipo nuevo.", crisis=False)
    elif text == "sin lista":
        chat.send("notice", ref=ref, kind="fallback", text="No soy charla.", crisis=False)
    elif text == "otra ventana":
        chat.send("notice", ref=None, kind="taken_over", text="Esta charla siguió en otra conexión.",
                  crisis=False)
        chat.close(1000)
    else:
        chat.send("reply", ref=ref, text="ok", final=True, crisis=False)


@pytest_twisted.ensureDeferred
async def test_tiers_kinds_limited_mode_and_take_over_from_a_scripted_server():
    greeting = {"helplines": GREETING_LINES,
                "conversational": ["answered", "command", "offline", "charla_nueva"]}
    run = await scripted(answers_by_text, greeting)
    try:
        def check():
            context, page = open_chat(run.browser, run.url)
            header = (page.locator("#helplines li").all_text_contents(),
                      page.locator("#helplines a").evaluate_all(
                          "(links) => links.map((a) => a.getAttribute('href'))"))
            stored = page.evaluate("localStorage.getItem('psicoia-helplines')")
            result = {"header": header, "stored": stored}

            say(page, "agudo", 0)
            crisis = page.locator("#messages .msg.bot.crisis")
            result["acute"] = (crisis.locator(".text").inner_text(),
                               crisis.locator(".helplines").get_attribute("class"),
                               crisis.locator(".helplines li").all_inner_texts(),
                               crisis.locator(".helplines a").first.get_attribute("href"))

            mode_before = page.is_visible("#mode")
            say(page, "sin modelo", 1)
            say(page, "sin modelo", 2)
            result["limited"] = (mode_before, page.is_visible("#mode"),
                                 page.locator("#mode").count(),
                                 page.locator("#messages .msg.bot .who").all_inner_texts())
            say(page, "otro tipo", 3)  # a kind the greeting calls conversational: a reply bubble
            page.fill("#input", "sin lista")  # fallback, not in this greeting's list: a notice
            page.keyboard.press("Enter")
            page.locator("#messages .msg.notice").last.wait_for(timeout=TIMEOUT_MS)
            result["kinds"] = (page.locator("#messages .msg.bot .text").last.inner_text(),
                               page.locator("#messages .msg.notice .text").last.inner_text())
            page.fill("#input", "otra ventana")
            page.keyboard.press("Enter")
            page.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            page.wait_for_timeout(2500)  # a reconnect would have happened by now (1 s backoff)
            result["taken"] = (page.inner_text("#connection-note"), len(run.connections),
                               page.get_attribute("#status", "data-state"))
            # Disconnected: the helplines from the greeting are still one tap away.
            page.click("#helplines-panel summary")
            result["offline_lines"] = page.locator("#helplines a").evaluate_all(
                "(links) => links.filter((a) => a.offsetParent !== null).map((a) => a.href)")
            return result

        result = await browser_call(run, check)
        assert result["header"] == ([line["text"] for line in GREETING_LINES], ["tel:5550100", "tel:112"])
        assert "Testlandia" in result["stored"]
        acute_text, acute_class, acute_items, first_link = result["acute"]
        # The numbers are the tappable list below, not repeated in the sentence.
        assert acute_text == ("Esto es una emergencia: llamá ahora mismo a los números de acá "
                              "abajo. Si hay alguien cerca, avisale ya.")
        assert "acute" in acute_class.split()
        assert acute_items[0] == "Emergencias: 112" and first_link == "tel:112"
        before, visible, once, labels = result["limited"]
        assert before is False and visible is True and once == 1
        assert all(label == "PsicoIA" for label in labels)  # no "modo limitado" on every reply
        assert result["kinds"] == ("Un tipo nuevo.", "No soy charla.")
        bar, connections, status = result["taken"]
        assert "siguió en otra ventana" in bar and "Seguir acá" in bar
        assert connections == 1 and status == "closed"
        assert result["offline_lines"] == ["tel:5550100", "tel:112"]
    finally:
        await run.stop()


def test_static_helplines_in_the_page_are_the_default_resources():
    """A first visit with the server down still lists the default lines (psicoia/texts.py)."""
    from html.parser import HTMLParser

    from psicoia.transports.helplines import helplines

    class Items(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside = False
            self.items: list = []
            self.links: list = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "ul" and attrs.get("id") == "helplines":
                self.inside = True
            elif self.inside and tag == "li":
                self.items.append("")
            elif self.inside and tag == "a":
                self.links.append(attrs["href"])

        def handle_endtag(self, tag):
            if tag == "ul":
                self.inside = False

        def handle_data(self, data):
            if self.inside and self.items:
                self.items[-1] += data

    page = Items()
    page.feed((Path(__file__).parent.parent / "web" / "index.html").read_text("utf-8"))
    assert [item.strip() for item in page.items] == list(texts.CRISIS_RESOURCES_DEFAULT)
    expected = [f"tel:{phone['tel']}" for entry in helplines(texts.CRISIS_RESOURCES_DEFAULT)
                for phone in entry["phones"]]
    assert page.links == expected
    assert "911" not in (Path(__file__).parent.parent / "web" / "app.js").read_text("utf-8")


# --- accessibility: axe-core (tests/vendor, injected by the test, never served) ---------------


def axe_serious(page) -> list:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(content=AXE.read_text("utf-8"))
    found = page.evaluate("""async () => {
      const result = await axe.run(document, {resultTypes: ['violations']});
      return result.violations.map((v) => ({id: v.id, impact: v.impact,
        nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest_twisted.ensureDeferred
async def test_accessibility_checker_finds_no_serious_violations_light_and_dark():
    run = await running()
    try:
        def check(scheme: str, width: int):
            # The page's CSP allows only its own scripts: the checker is injected around it.
            context, page = open_chat(run.browser, run.url, width=width, height=800,
                                      scheme=scheme, bypass_csp=True)
            try:
                say(page, "hola, hoy estoy triste", 0)
                say(page, "me quiero morir", 1)
                page.fill("#input", "un mensaje que espera")
                page.keyboard.press("Enter")
                page.wait_for_selector("#typing", state="visible", timeout=TIMEOUT_MS)
                page.click("#helplines-panel summary")
                page.click("#forget")
                page.fill("#input", "algo a medio escribir")
                page.wait_for_timeout(300)  # entry animations done: colours are final
                found = axe_serious(page)
                # The checker really checks: an image without alt text is caught.
                page.evaluate("document.body.appendChild(document.createElement('img'))"
                              ".src = 'icon.svg'")
                caught = [v["id"] for v in page.evaluate(
                    "async () => (await axe.run(document)).violations")]
                assert "image-alt" in caught
                return found
            finally:
                context.close()

        for scheme in ("light", "dark"):
            for width in (390, 1280):
                run.provider.push(Scripted(body=completion("Gracias por contármelo.")),
                                  Scripted(body=completion("Estoy acá con vos.")),
                                  Scripted(hang=True))
                violations = await browser_call(run, lambda: check(scheme, width))
                assert violations == [], (scheme, width, violations)
    finally:
        await run.stop()


@pytest_twisted.ensureDeferred
async def test_a_second_tab_takes_the_conversation_over_and_the_first_stays_closed():
    run = await running()
    try:
        def two_tabs():
            context, first = open_chat(run.browser, run.url)
            say(first, "hola, soy Ana", 0)
            second = context.new_page()  # same origin, same stored token: it resumes
            second.goto(run.url)
            second.wait_for_function(
                "() => document.getElementById('messages').innerText"
                ".includes('Seguimos nuestra charla')", timeout=TIMEOUT_MS)
            first.wait_for_selector("#connection-note", state="visible", timeout=TIMEOUT_MS)
            first.wait_for_timeout(2500)  # a reconnect would have happened by now
            return (first.inner_text("#connection-note"),
                    first.get_attribute("#status", "data-state"), bubbles(second),
                    sum(1 for c in run.service.registry.connections()
                        if c.transport_name == "websocket"))

        bar, status, shown, connections = await browser_call(run, two_tabs)
        assert "siguió en otra ventana" in bar and status == "closed"
        assert shown[0] == ["user", "hola, soy Ana"] and shown[1][0] == "bot"
        assert connections == 1  # the first tab did not come back by itself
    finally:
        await run.stop()
