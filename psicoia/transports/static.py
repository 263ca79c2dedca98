"""
The chat page's files, read once at start-up and served from memory by an allowlist.

Only the names in :data:`PAGE_FILES` are ever served, and only if each is a regular file
directly in the web root (not a symlink): whatever else lands in ``web/`` (dotfiles, editor
backups, a symlink to ``/etc``) is unreachable, and no request touches the filesystem, so no
path can make the server open a file (the NUL-in-path ``critical`` of issue 16 came from there).

``Range`` is ignored: every answer is the whole file with ``Accept-Ranges: none``. The page
never needs ranges, and Twisted's multi-range producer leaked a request, an open file and its
buffers per request on some range layouts (issue 16). Each file has a strong ``ETag`` (a hash of
its bytes) and ``Cache-Control: no-cache``, so browsers revalidate and get ``304`` while the
file is unchanged.
"""

from __future__ import annotations

import hashlib
import html
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from twisted.web.resource import Resource

from psicoia import texts

# The page: what index.html loads, and nothing else (setup.cfg packages the same list).
PAGE_FILES = ("index.html", "app.js", "style.css", "icon.svg")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class PageFile:
    """One file of the page: its bytes, ``Content-Type`` and quoted strong ``ETag``."""

    body: bytes
    content_type: bytes
    etag: bytes


def load_page(root: Path, names: tuple[str, ...] = PAGE_FILES) -> dict[bytes, PageFile]:
    """Read the allowlisted files of ``root`` into memory: URL segment (bytes) -> PageFile.

    A listed name that is missing, a symlink or not a regular file is skipped (and so 404s).
    Unknown extensions are skipped too: every served file has an explicit content type.
    """
    files: dict[bytes, PageFile] = {}
    for name in names:
        path = root / name
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None:
            continue
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:32]
        files[name.encode("ascii")] = PageFile(body, content_type.encode("ascii"),
                                               f'"{digest}"'.encode("ascii"))
    return files


def not_found_page() -> bytes:
    """The Spanish 404 page: plain HTML, no script or style (the CSP allows none inline)."""
    title = html.escape(texts.PAGE_NOT_FOUND_TITLE)
    return (
        '<!doctype html>\n<html lang="es"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>"
        f"<p>{html.escape(texts.PAGE_NOT_FOUND)}</p>"
        f'<p><a href="/">{html.escape(texts.PAGE_NOT_FOUND_LINK)}</a></p></body></html>\n'
    ).encode("utf-8")


class NotFound(Resource):
    """404 with the Spanish page, for every method and every path below it."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.body = not_found_page()

    def render(self, request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Content-Length", b"%d" % len(self.body))
        return b"" if request.method == b"HEAD" else self.body


class PageFileResource(Resource):
    """``GET``/``HEAD`` of one in-memory file; nothing below it."""

    def __init__(self, page_file: PageFile, not_found: Resource) -> None:
        super().__init__()
        self.file = page_file
        self.not_found = not_found

    def getChild(self, name: bytes, request) -> Resource:
        return self.not_found

    def render_GET(self, request) -> bytes:
        request.setHeader(b"Content-Type", self.file.content_type)
        request.setHeader(b"ETag", self.file.etag)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Accept-Ranges", b"none")
        if _matches(request.getHeader(b"if-none-match"), self.file.etag):
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Length", b"%d" % len(self.file.body))
        return b"" if request.method == b"HEAD" else self.file.body

    render_HEAD = render_GET


def _matches(if_none_match, etag: bytes) -> bool:
    if not if_none_match:
        return False
    candidates = {part.strip().removeprefix(b"W/") for part in if_none_match.split(b",")}
    return etag in candidates or b"*" in candidates


class PageRoot(Resource):
    """The site's root: ``/`` is ``index.html``, allowlisted names are their files, anything
    else (not a child added with ``putChild``) is the Spanish 404."""

    def __init__(self, files: Mapping[bytes, PageFile]) -> None:
        super().__init__()
        self.not_found = NotFound()
        self.files = {name: PageFileResource(f, self.not_found) for name, f in files.items()}

    def getChild(self, name: bytes, request) -> Resource:
        if name == b"":
            name = b"index.html"
        return self.files.get(name, self.not_found)

    def render(self, request) -> bytes:
        # Reached only for a request path without a leading segment (``GET http://h``).
        return self.getChild(b"", request).render(request)
