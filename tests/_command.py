"""Running ``leat-async`` as a subprocess from an async test (whose loop serves the fake)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .conftest import TOKEN

__all__ = ["HARNESS", "Done", "cli", "environ", "start"]

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
