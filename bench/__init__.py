"""Benchmarks: `make bench` (or `python -m bench [name ...]`) runs them and writes JSON.

Each benchmark is a module `bench/bench_<name>.py` with `async def run() -> dict` (or a plain
`def run() -> dict`) returning JSON-ready figures. `python -m bench` runs every one (or the named
ones), prints each result as JSON and writes it to `bench/results/<name>.json`. Benchmarks start
their own servers (the same fixtures the tests use) and are never part of `make test`: a
machine being slow never fails a test. `docs/benchmarks.md` holds the tables and how to read them.
"""
