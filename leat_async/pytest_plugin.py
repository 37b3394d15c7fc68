"""The pytest plugin of ``pip install 'leat-async[testing]'``: pytest loads it by itself.

Fixtures, for a project's own tests, with no conftest and no pytest configuration:

- ``leat_fake``: a running :class:`~leat_async.testing.FakeLeat` on loopback (empty: add
  shops, cards and history with its seeding methods), stopped after the test;
- ``leat_client``: a :class:`~leat_async.LeatClient` bound to ``leat_fake``, closed after.

An ``async def`` test that asks for either runs on pytest-asyncio whatever the project's
``asyncio_mode`` (in strict mode the plugin marks it ``asyncio`` itself); other tests are left
as they are. Without pytest-asyncio (the extra brings it), asking for a fixture fails the test
with a line saying what to install, and nothing else changes.

(``pytest_plugins = ["leat_async.testing.pytest_plugin"]``, the older way, still gives
``leat_fake``.)
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest

from . import LeatClient
from .testing import FakeLeat

__all__ = ["FIXTURES", "pytest_pycollect_makeitem"]

FIXTURES: Final = ("leat_fake", "leat_client")

try:
    import pytest_asyncio

    _ASYNCIO = True
except ImportError:  # pragma: no cover - the plain install, with pytest but not the extra
    _ASYNCIO = False


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> None:
    """Mark an ``async def`` test that asks for our fixtures ``asyncio`` (before pytest-asyncio
    looks at it); collecting it is left to the others."""
    if not _ASYNCIO or not inspect.iscoroutinefunction(obj):
        return
    if not collector.funcnamefilter(name):
        return
    asks = set(inspect.signature(obj).parameters) & set(FIXTURES)
    marks = getattr(obj, "pytestmark", [])
    if asks and not any(getattr(mark, "name", None) == "asyncio" for mark in marks):
        pytest.mark.asyncio(obj)


if _ASYNCIO:

    @pytest_asyncio.fixture(name="leat_fake")
    async def _running_fake() -> AsyncIterator[FakeLeat]:
        """A running fake Leat server (``leat_fake.url``, ``leat_fake.token``)."""
        async with FakeLeat() as fake:
            yield fake

    @pytest_asyncio.fixture(name="leat_client")
    async def _client_of_the_fake(leat_fake: FakeLeat) -> AsyncIterator[LeatClient]:
        """A client of ``leat_fake``."""
        async with LeatClient(leat_fake.token, base_url=leat_fake.url) as client:
            yield client

else:  # pragma: no cover - see the module's docstring
    _MISSING = "leat_fake and leat_client need pytest-asyncio: pip install 'leat-async[testing]'"

    @pytest.fixture(name="leat_fake")
    def _no_fake() -> None:
        pytest.fail(_MISSING, pytrace=False)

    @pytest.fixture(name="leat_client")
    def _no_client() -> None:
        pytest.fail(_MISSING, pytrace=False)
