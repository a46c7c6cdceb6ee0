"""Verification in small chunks: a log of a few hundred entries then crosses every boundary
that a log of millions does (chunks of entries, batches of rows read from the driver)."""

import pytest

from liaison.ledger import log


def small_chunks(monkeypatch: pytest.MonkeyPatch, level: int = 3) -> None:
    """Verify in chunks of 2**level entries, reading rows three at a time."""
    monkeypatch.setattr(log, "_CHUNK_LEVEL", level)
    monkeypatch.setattr(log, "_FETCH", 3)


@pytest.fixture(params=["one chunk", "chunks of 8"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "chunks of 8":
        small_chunks(monkeypatch)
    return request.param
