"""pytest plugin: ``pytest_plugins = ["leat_async.testing.pytest_plugin"]``.

Gives the ``leat_fake`` fixture: a started ``FakeLeat`` (token ``"test-token"``), closed after
the test. Needs pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from . import FakeLeat

__all__ = ["leat_fake"]


@pytest_asyncio.fixture
async def leat_fake() -> AsyncIterator[FakeLeat]:
    """A running fake Leat server; ``leat_fake.url`` and ``leat_fake.token`` configure a client."""
    async with FakeLeat() as fake:
        yield fake
