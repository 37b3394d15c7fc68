"""What every scenario shares: the fake server in its own process, timing, medians, tables."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

__all__ = [
    "TOKEN",
    "Config",
    "FakeServer",
    "Goal",
    "Measured",
    "Section",
    "Timing",
    "child_options",
    "fmt_int",
    "fmt_ratio",
    "measured_run",
    "median",
    "render",
    "timed",
]

#: The bearer token the benchmark's fake server accepts (passed with ``--token``).
TOKEN = "bench-token"
_START_TIMEOUT = 300.0  # seeding a million rows takes a while on a slow box
_STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Config:
    """What the command line asked for."""

    quick: bool
    repeats: int
    profile: bool = False


@dataclass(frozen=True)
class Goal:
    """One goal from the issues, and whether this run met it."""

    scenario: str
    what: str
    value: float
    target: float
    unit: str = "x"
    at_most: bool = False  # the value must stay at or below the target (a cost, not a speed)

    @property
    def met(self) -> bool:
        return self.value <= self.target if self.at_most else self.value >= self.target

    def row(self) -> list[str]:
        shown = f"{self.value:.1f} %" if self.unit == "%" else fmt_ratio(self.value)
        sign = "<=" if self.at_most else ">="
        target = f"{sign} {self.target:.0f} %" if self.unit == "%" else f"{sign} {self.target:g}x"
        return [self.scenario, self.what, shown, target, "met" if self.met else "MISSED"]


@dataclass
class Section:
    """A printed table: a title, column headers, rows, and notes under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"### {self.title}"]
        if self.rows:
            lines += ["", render(self.headers, self.rows)]
        if self.notes:
            lines += ["", *self.notes]
        return "\n".join(lines)


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded so it also reads well in a terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "".join("|" + "-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


@dataclass(frozen=True)
class Timing:
    """One timed run: wall seconds, this process's CPU seconds, the server's CPU seconds."""

    wall: float
    cpu: float
    server_cpu: float


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_options() -> dict[str, Any]:
    """Popen options for our children: Ctrl-C reaches only us (we stop them in order), and on
    Linux a child is sent SIGTERM should we die without cleaning up (even by SIGKILL)."""
    options: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


class FakeServer:
    """``python -m leat_async.testing`` in a child process, so its CPU is not ours.

    ``with FakeServer(seed=20_000) as server: server.url`` -- the child is always stopped on
    exit, Ctrl-C and ``SystemExit`` included.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "leat_async.testing",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--latency",
            str(latency),
            "--token",
            TOKEN,
        ]
        if rate_limit is not None:
            self.args += ["--rate-limit", str(rate_limit), "--rate-window", str(rate_window)]
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake server is not running")
        return self._url

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the fake server is not running")
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (Linux /proc; 0 elsewhere)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def __enter__(self) -> Self:
        stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            self.args,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            **child_options(),
        )
        try:
            self._url = self._read_url(stderr.fileno())
        except BaseException:
            self.stop()
            raise
        finally:
            stderr.close()
        return self

    def _read_url(self, stderr_fd: int) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        out = self._proc.stdout
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the fake server printed no URL within {_START_TIMEOUT:.0f} s")
            ready, _, _ = select.select([out], [], [], min(left, 0.5))
            if ready:
                line = out.readline().decode().strip()
                if line.startswith("http"):
                    return line
                if not line and self._proc.poll() is not None:
                    os.lseek(stderr_fd, 0, os.SEEK_SET)
                    err = os.read(stderr_fd, 4000).decode(errors="replace").strip()
                    raise RuntimeError(f"the fake server exited ({self._proc.returncode}): {err}")
            elif self._proc.poll() is not None:
                raise RuntimeError(f"the fake server exited ({self._proc.returncode})")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        self._url = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def timed(server: FakeServer | None, fn: Callable[[], Awaitable[int]]) -> tuple[Timing, int]:
    """Await ``fn()`` (which returns a count), timing wall, our CPU and the server's CPU."""
    server_before = server.cpu_seconds() if server is not None else 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    count = await fn()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    server_cpu = (server.cpu_seconds() - server_before) if server is not None else 0.0
    return Timing(wall, cpu, server_cpu), count


@dataclass(frozen=True)
class Measured:
    """A command run to its end: its exit code, wall and CPU seconds, peak RSS, stderr.

    ``max_rss_mib`` is the largest peak RSS of the command and its children (Linux: their own
    VmHWM, sampled; elsewhere ``wait4``'s, which may include this harness's own peak);
    ``tree_rss_mib`` the largest sum over the command and its live children, sampled (Linux).
    """

    code: int
    wall: float
    cpu: float
    max_rss_mib: float
    stderr: str
    tree_rss_mib: float = 0.0


def _rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` plus its descendants', from /proc (0 for what cannot be read)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return total
    return total + sum(_rss_kib(child) for child in children)


def _hwm_kib(pid: int) -> int:
    """The largest VmHWM (peak RSS since exec) of ``pid`` and its descendants (0: unreadable)."""
    peak = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            peak = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return peak
    return max([peak, *(_hwm_kib(child) for child in children)])


class _TreeSampler(threading.Thread):
    """Samples a command's process tree: the largest sum of RSS, and the largest peak RSS of
    any one process (VmHWM only grows, so a late sample still sees an earlier spike)."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self._pid, self._every = pid, every
        self._done = threading.Event()
        self.peak_kib = 0
        self.hwm_kib = 0

    def run(self) -> None:
        while not self._done.wait(self._every):
            self.peak_kib = max(self.peak_kib, _rss_kib(self._pid))
            self.hwm_kib = max(self.hwm_kib, _hwm_kib(self._pid))

    def stop(self) -> None:
        self._done.set()
        self.join()


def measured_run(args: Sequence[str], env: dict[str, str], cwd: str | None = None) -> Measured:
    """Run a command (stdout discarded) in ``cwd``; its own peak RSS and CPU come from
    ``os.wait4`` (``RUSAGE_CHILDREN`` would mix in other children, like a fake server)."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            list(args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            **child_options(),
        )
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop()
        wall = time.perf_counter() - started
        stderr.seek(0)
        said = stderr.read().decode(errors="replace").strip()
    return Measured(
        code=os.waitstatus_to_exitcode(status),
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        # wait4's ru_maxrss is no use on Linux: exec carries the peak RSS of the process
        # forked from (this harness, hundreds of MiB after the in-process scenarios) into the
        # command's; VmHWM is the command's own (sampled every 50 ms)
        max_rss_mib=(sampler.hwm_kib or usage.ru_maxrss) / 1024,  # KiB on Linux
        stderr=said,
        tree_rss_mib=sampler.peak_kib / 1024,
    )
