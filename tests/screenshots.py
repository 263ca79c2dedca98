"""Screenshots of the chat page (light and dark, desktop and phone) for the README.

Uses the browser test's machinery (tests/browser.py) against the real server and the fake
provider. Run by tests/test_browser.py (into a temporary directory, or the directory named by
PSICOIA_SCREENSHOTS), or directly:

    .venv/bin/python -m tests.screenshots docs/screenshots
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser import BrowserThread, find_chromium
from tests.fake_provider import FakeProvider, Scripted, completion, serve
from tests.helpers import LOCAL, make_config, port_of, start_service

SIZES = {"desktop": (1280, 800), "phone": (390, 844), "small": (320, 640)}
SCHEMES = ("light", "dark")
CONVERSATION = [
    ("Hola. Esta semana estuve muy cansada y me cuesta dormir.",
     "Hola, gracias por contármelo. Dormir mal y sentirse agotada pesa mucho. "
     "¿Hay algo que te dé vueltas en la cabeza a la noche?"),
    ("Sí, el trabajo. Siento que no llego con todo.",
     "Tiene sentido que te sientas así con tanta carga. ¿Qué pasaría si eligieras una sola "
     "cosa para mañana y dejaras el resto para después?"),
]
PENDING = "Puede ser. Voy a probar con eso."


def shoot(browser: BrowserThread, port: int, scheme: str, size: str, path: Path) -> None:
    """On the browser thread: one conversation, captured while the next reply is pending."""
    width, height = SIZES[size]
    context = browser.browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme,
        device_scale_factor=1, is_mobile=size != "desktop", has_touch=size != "desktop")
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#messages .msg.greeting", timeout=15_000)
        for index, (said, _) in enumerate(CONVERSATION, start=1):
            page.fill("#input", said)
            page.keyboard.press("Enter")
            page.locator("#messages .msg.bot").nth(index - 1).wait_for(timeout=15_000)
        page.fill("#input", PENDING)
        page.keyboard.press("Enter")
        page.wait_for_selector("#typing", state="visible", timeout=15_000)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(400)  # let the entry animations finish
        page.screenshot(path=str(path))
    finally:
        context.close()


async def take_screenshots(executable: str, target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    provider = FakeProvider()
    provider_port, url = await serve(provider)
    config = make_config(server={"tcp": None, "http": LOCAL}, llm={"base_url": url})
    service = await start_service(config)
    port = await port_of(service, "http")
    browser = BrowserThread(executable)
    written = []
    try:
        await browser.start()
        for scheme in SCHEMES:
            for size in SIZES:
                provider.push(*[Scripted(body=completion(reply)) for _, reply in CONVERSATION],
                              Scripted(hang=True))
                path = target / f"chat-{size}-{scheme}.png"
                await browser.call(lambda: shoot(browser, port, scheme, size, path))
                written.append(path)
    finally:
        await browser.stop()
        for request in provider.hanging:
            if not request.finished and not getattr(request, "_disconnected", False):
                request.finish()
        await service.stopService()
        await provider_port.stopListening()
    return written


def main(argv: list[str]) -> None:
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    executable = find_chromium()
    if executable is None:
        raise SystemExit("no chromium found (apt-get install chromium)")
    target = Path(argv[1] if len(argv) > 1 else "docs/screenshots")
    react(lambda _reactor: ensureDeferred(take_screenshots(executable, target)))


if __name__ == "__main__":
    main(sys.argv)
