"""
Every literal shape a crisis pattern can match, and the anchors that cover them.

    python -m tests.anchor_shapes --write   # regenerate psicoia/chat/detector/anchors.py

The detector (psicoia/chat/detector/rules.py, section 5) runs a pattern only when one of its
anchors is in the message. This module is the proof that this never skips a match:
:func:`pattern_shapes` expands a pattern, with Python's own regular-expression parser, into
every literal shape it can match (unknown stretches kept as ANY), and :func:`covered` says
whether each shape contains one of the anchors. tests/test_safety.py runs it on every
pattern; ``--write`` chooses anchors for each pattern (a rare word of each shape, or two
common words together) and writes them as data, so the server never needs this parser.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

try:  # Python 3.11+: the parser's own modules (sre_parse is a deprecated alias of them)
    from re import _constants as sre_constants, _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants
    import sre_parse

ANY, END = object(), object()
OUT = Path(__file__).resolve().parent.parent / "psicoia" / "chat" / "detector" / "anchors.json"

# Words too common to be an anchor alone (Spanish, English, Portuguese function words and
# everyday verbs): they are used in pairs.
COMMON = frozenset("""
    que de la el en y a los las se no me mi mis por con para una un es lo todo toda todos todas
    esta estoy estas estan esto este ese esa eso ya hoy mas pero si como muy bien tengo tiene
    voy va vas vamos the i to and my is te tu su sus al del le les o yo ni nada algo uno ser fue
    era soy sos hay vez otra otro cada cuando donde sin mejor siempre nunca ahora asi solo
    manana noche dia in of on it be am do not you that this for at with are was will would
    can have had just so what about anymore more one all an or if me eu um uma do da na no em
    pra com tudo voce mais quiero quiere queria puedo puede hacer hago hace dice dijo mucho
    tan nadie alguien gente vida casa rato tiempo tarde semana ano bueno mal hasta desde
    entre sobre porque aca ahi alla dos tres otra vez poco nos les quien cual estar estaba
    seguir sigo saber se sabe veo ver dar doy das pasa paso pase mismo misma usar favor
    hoje vou to tao ja ele ela isso haser haserlo siento tomar ganas dormir antes volver
    ultimo ultima again think everything want never mundo compre quisiera kiero sentir
    estarian seria tener dormirme abrir carga bajar cuide perdon grasias gracias once
    quedan motivos fuersas razones hablar nesesito pienso pense creo claro listo seguro
    tranquilo tranquila need ready wish thought take any handle about here there
""".split())
_UNUSED = frozenset("""
""".split())


def _shapes(parsed) -> list[list]:
    shapes = [[]]
    for op, arg in parsed:
        options = _node_shapes(op, arg)
        shapes = [a + b for a in shapes for b in options]
        assert len(shapes) < 50_000, "pattern too branchy to expand"
    return shapes


def _node_shapes(op, arg) -> list[list]:
    c = sre_constants
    if op is c.LITERAL:
        return [[chr(arg)]]
    if op in (c.NOT_LITERAL, c.ANY):
        return [[ANY]]
    if op is c.IN:  # a small class of plain characters ("[oa]") is each of them; else unknown
        if all(kind is c.LITERAL for kind, _ in arg) and len(arg) <= 8:
            return [[chr(value)] for _, value in arg]
        return [[ANY]]
    if op is c.BRANCH:
        return [shape for branch in arg[1] for shape in _shapes(branch)]
    if op is c.SUBPATTERN:
        return _shapes(arg[-1])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        low, high, inner = arg[0], arg[1], _shapes(arg[2])
        shapes = [[]]
        for _ in range(low):
            shapes = [a + b for a in shapes for b in inner]
        if high == low:
            return shapes
        # low copies; or one more, and then anything (more copies) if more are allowed
        more = [] if high == low + 1 else [ANY]
        return shapes + [a + b + more for a in shapes for b in inner]
    if op is c.ASSERT and arg[0] == 1:  # look-ahead: a word end if it wants a non-letter next
        ahead = _shapes(arg[1])
        if all(not s or (isinstance(s[0], str) and not s[0].isalnum()) for s in ahead):
            return [[END]]
        return [[]]
    if op in (c.ASSERT, c.ASSERT_NOT):  # constraints only: ignoring them can only add shapes
        return [[]]
    if op is c.AT:
        return [[END]] if arg is c.AT_BOUNDARY else [[]]
    raise AssertionError(f"the shape expansion does not know {op}: teach it before using it")


def pieces(shape: list) -> list[str]:
    """The stretches of text a match of ``shape`` must contain, in normalised text with "|"
    read as a space (where a word boundary is always a space: the text starts and ends with
    one). A stretch starts with a space when a word is known to start there."""
    found, piece, spaced = [], " ", True  # every pattern starts right after a space
    for i, item in enumerate(shape):
        if item is ANY:
            if piece.strip():
                found.append(piece)
            piece, spaced = "", False
        elif item is END:
            after = shape[i + 1] if i + 1 < len(shape) else None
            if piece and piece[-1].isalnum():
                piece, spaced = piece + " ", True
            elif not piece and isinstance(after, str) and after.isalnum():
                piece, spaced = " ", True
        elif item == " " and spaced:
            spaced = False  # the space the boundary already implied
        else:
            piece, spaced = piece + item, False
    if piece.strip():
        found.append(piece)
    return found


def whole_words(found: list[str]) -> list[str]:
    """The words of ``found`` known to be whole (a space on both sides)."""
    return [w for p in found for i, w in enumerate(p.split(" ")) if w and 0 < i < p.count(" ")]


def _fold(piece: str) -> str:
    """A stretch as normalised text can hold it (seseo, letter runs collapsed): a shape with
    "ci" or "ll" cannot occur as is, and the anchors are folded the same way."""
    from psicoia.chat.detector.normalize import fold_word

    return fold_word(piece)


def covered(anchors, found: list[str]) -> bool:
    """True when a text containing the stretches ``found`` has one of ``anchors``."""
    found = [_fold(piece) for piece in found]
    words = set(whole_words(found))
    if anchors.words & words:
        return True
    if any(anchors.pairs[w] & words for w in words & anchors.pairs.keys()):
        return True
    return any(start in piece for piece in found for start in anchors.starts)


def pattern_shapes(source: str) -> list[list]:
    """Every literal shape the folded pattern ``source`` can match (it starts after a space)."""
    return _shapes(list(sre_parse.parse(source)))


def uncovered(source: str, anchors) -> list[list[str]]:
    """The shapes of ``source`` with none of ``anchors`` (as their stretches of text)."""
    return [pieces(s) for s in pattern_shapes(source) if not covered(anchors, pieces(s))]


def choose(source: str) -> str:
    """Anchors for one pattern: per shape, a rare whole word (one already chosen if possible,
    else the longest), else the two longest common words together, else a word start."""
    words, pairs, starts = [], [], []
    for shape in pattern_shapes(source):
        found = [_fold(piece) for piece in pieces(shape)]
        whole = whole_words(found)
        if set(whole) & set(words) or any(a in whole and b in whole for a, b in pairs):
            continue
        if any(piece.startswith(" " + s) or (" " + s) in piece for piece in found for s in starts):
            continue
        rare = [w for w in whole if w not in COMMON]
        if rare:
            words.append(max(rare, key=len))
        elif len(set(whole)) >= 2:
            first, second = sorted(set(whole), key=len, reverse=True)[:2]
            pairs.append((first, second))
        elif whole:
            words.append(whole[0])
        else:
            fragment = max((p.split(" ")[1] for p in found if p.startswith(" ") and
                            len(p.split(" ")) > 1), key=len, default="")
            if not fragment:
                raise AssertionError(f"no anchor possible for {source!r}: {found}")
            starts.append(fragment)
    spec = sorted(set(words)) + sorted({f"{a}+{b}" for a, b in pairs}) + sorted(
        {f"{s}*" for s in starts})
    return " ".join(spec)


def write(path: Path = OUT) -> None:
    """Choose the anchors of every pattern and write them as JSON (sorted, one per line)."""
    # rules.py refuses to load with a pattern that has no anchors, except for this tool.
    os.environ["PSICOIA_ANCHOR_BOOTSTRAP"] = "1"
    from psicoia.chat.detector import rules

    anchors = {}
    for sources in rules._GROUPS.values():
        for source in sources:
            anchors[source] = choose(source)
    path.write_text(json.dumps(anchors, indent=0, sort_keys=True, ensure_ascii=True) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.anchor_shapes --write")
    write()
