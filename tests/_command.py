"""Running ``leat-async`` as a subprocess from an async test (whose loop serves the fake)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from leat_async.testing import FakeLeat, Fault

from .conftest import TOKEN

__all__ = ["HARNESS", "Done", "cli", "environ", "export", "held_page", "names", "start", "written"]

HARNESS = str(Path(__file__).with_name("_cli_harness.py"))


@dataclass(frozen=True)
class Done:
    status: int
    out: bytes
    err: str

    @property
    def line(self) -> str:
        """The one line on stderr (never a traceback)."""
        lines = self.err.splitlines()
        assert len(lines) == 1 and "Traceback" not in self.err, self.err
        return lines[0]


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEAT_", "HARNESS_"))}
    return {**env, "LEAT_TOKEN": TOKEN, "PYTHONWARNINGS": "always::ResourceWarning", **extra}


async def start(*args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        HARNESS,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ(**env),
    )


async def cli(*args: str, **env: str) -> Done:
    proc = await start(*args, **env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Done(proc.returncode, out, err.decode())


def export(fake: FakeLeat, out: Path, *more: str) -> list[str]:
    return ["export", "--base-url", fake.url, "-o", str(out), *more]


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def held_page(fake: FakeLeat, page: str) -> tuple[asyncio.Event, asyncio.Event]:
    """The first request for ``page`` waits: ``applied`` is set when it arrives, ``hold``
    lets it go (set it before the fake stops)."""
    applied, hold = asyncio.Event(), asyncio.Event()
    fake.add_fault(Fault(method="GET", query={"page": page}, applied=applied, hold=hold))
    return applied, hold


async def written(path: Path, proc: asyncio.subprocess.Process, bound: float = 30) -> None:
    """Until the running export ``proc`` has written rows to ``path`` (its partial file):
    then its first page is in its progress, and a signal or a crash leaves it resumable."""
    async with asyncio.timeout(bound):
        while not _size(path):
            assert proc.returncode is None, "the export ended before it wrote a row"
            await asyncio.sleep(0.005)  # a file gives no notice when it grows: look again


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
