"""Reproducible benchmark of the gateway against a fast upstream and a bare aiohttp proxy.

Run it with `make bench` or `python -m bench.run --help`; `bench/README.md` explains every figure.
"""
