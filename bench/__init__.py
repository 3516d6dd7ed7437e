"""Benchmarks (contract §6).

``python -m bench`` runs asgi_ws against its peers (:mod:`bench.run`) and writes
``bench/RESULTS.md``.  The other modules are scripts of their own:
``python -m bench.concurrency`` (what anyio costs), ``python -m bench.cross_process``
(latency through Redis), ``python -m bench.soak`` (10,000 connections for a minute).
"""
