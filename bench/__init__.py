"""
Benchmarks for PsicoIA: a fake provider, a load generator, the floor server and ``bench/run``.

Everything here talks to 127.0.0.1 only, bounds every loop in count and time, and stops by
itself. ``bench/run`` is the entry point; the modules are also command-line tools of their own
(``python -m bench.fake_provider --help`` and so on, from the repository root).
"""
