"""
What the crisis detector (:func:`psicoia.chat.detector.rules.assess`) costs per message, with ``timeit``.

    .venv/bin/python bench/safety_cost.py [--module PATH] [--repeat N] [--timer cpu|wall]

It runs on every message on the reactor thread, so its cost is paid by the whole server.
Prints microseconds per call (best of ``--repeat`` rounds, so the least disturbed by other load
on a shared machine) for twenty ordinary chat messages of 20 to 200 characters, for one
message at risk, and for a 4 KB message (``limits.max_line_bytes``) of ordinary text.
``--module`` times another copy of ``rules.py`` (a saved "before" version, say). ``--timer``
is ``cpu`` by default (``time.process_time``: the CPU time this process spent, which is what
the reactor thread pays and what other load on a shared machine does not inflate) or ``wall``
(``time.perf_counter``). The messages go through ``assess`` alone (no conversation state):
the rules and the learned model (``psicoia/chat/detector/learned.py``) together; ``--module``
with the previous ``rules.py`` times the rules alone for an A/B.
Not run by the test suite; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
import timeit
from pathlib import Path

# Ordinary, non-risk chat messages, 20 to 200 characters, Spanish and English, with the
# accents, punctuation and a few of the chat spellings people use.
ORDINARY = [
    "hola, ¿cómo estás? hoy tuve un día bastante largo en el trabajo",
    "no sé bien qué hacer con mi jefe, me pide cosas a último momento",
    "estoy un poco ansioso por el examen del jueves, estudié pero siento que no me alcanza",
    "gracias por escucharme, me sirvió hablar un rato",
    "mi mamá está enferma y me preocupa mucho, vive lejos y no puedo ir a verla seguido",
    "dormí mal otra vez, me desperté a las 4 y no me pude volver a dormir",
    "me peleé con mi novia por una pavada y ahora no me contesta los mensajes",
    "¿qué puedo hacer cuando me agarra ansiedad antes de dormir? probé contar ovejas jaja",
    "hoy salí a caminar por el parque y me hizo bien, el sol estaba lindo. después me junté "
    "con una amiga a tomar mates y hablamos de todo un poco, hacía mucho que no la veía y me "
    "puso contento",
    "tengo muchas cosas en la cabeza y no logro concentrarme en nada de la facu",
    "me siento solo desde que me mudé, no conozco a nadie en esta ciudad todavía",
    "kiero aprender a manejar mejor el estrés, q me recomendás?",
    "el finde fui a un cumple y la pasé bien, aunque al principio me costó",
    "I had a rough week at work and I just need to vent for a bit",
    "my sister and I argued again about the holidays, it's always the same thing",
    "I can't sleep lately, I keep thinking about everything I have to do tomorrow",
    "feeling a bit anxious about my job interview on Monday, any tips?",
    "ok, gracias! buenas noches",
    "Estoy cansada de que en el trabajo nadie valore lo que hago... ¿es normal sentirse así?",
    "buen día!! hoy me levanté con más ganas, vamos a ver cómo sigue 🙂",
]
AT_RISK = "no sé, ya no aguanto más, quiero morirme"


def long_message(limit: int = 4096) -> str:
    """Ordinary text up to ``limit`` UTF-8 bytes (the longest line the transports accept)."""
    text, i = "", 0
    while True:
        candidate = (text + " " + ORDINARY[i % len(ORDINARY)]).strip()
        if len(candidate.encode("utf-8")) > limit:
            return text
        text, i = candidate, i + 1


def load(path: str | None):
    if path is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from psicoia.chat.detector import rules
        return rules
    spec = importlib.util.spec_from_file_location("safety_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TIMERS = {"cpu": time.process_time, "wall": time.perf_counter}


def per_call_us(fn, texts, repeat: int, number: int, timer=time.process_time) -> float:
    """Best of ``repeat`` rounds: microseconds per call, averaged over ``texts``."""
    def run():
        for text in texts:
            fn(text)
    best = min(timeit.repeat(run, repeat=repeat, number=number, timer=timer))
    return best / (number * len(texts)) * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", help="path of a rules.py to time instead of psicoia's")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--timer", choices=sorted(TIMERS), default="cpu")
    args = parser.parse_args(argv)
    safety = load(args.module)
    # An ordinary message the detector flags is a false positive: said, not hidden (it is
    # still timed with the others; its path costs a little more).
    flagged = sum(1 for t in ORDINARY if safety.assess(t).risk)
    assert safety.assess(AT_RISK).risk
    big = long_message()
    assert not safety.assess(big).risk
    timer = TIMERS[args.timer]
    print(f"{safety.__file__}; Python {platform.python_version()}, {platform.machine()}; "
          f"timer {args.timer}")
    lengths = sorted(len(t) for t in ORDINARY)
    print(f"ordinary messages ({len(ORDINARY)}, {lengths[0]}-{lengths[-1]} chars): "
          f"{per_call_us(safety.assess, ORDINARY, args.repeat, 200, timer):7.2f} us/message")
    print(f"  of them flagged by the detector (false positives): {flagged}")
    print(f"message at risk ({len(AT_RISK)} chars):              "
          f"{per_call_us(safety.assess, [AT_RISK], args.repeat, 2000, timer):7.2f} us/message")
    print(f"ordinary 4 KB message ({len(big.encode('utf-8'))} bytes):          "
          f"{per_call_us(safety.assess, [big], args.repeat, 50, timer):7.2f} us/message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
