"""Every code block of the README and the documentation site is checked, so the docs never rot.

A block says how it is checked with an HTML comment on the line just before its opening fence
(invisible on GitHub and on the site):

- ``<!-- run -->`` on a ``python`` block: a whole program. It is type-checked with
  ``mypy --strict`` and run as a script (``python -W error``) in an empty temporary directory;
  it must exit 0 on its own, against a ``FakeLeat`` it starts itself.
- ``<!-- typecheck -->`` on a ``python`` block: a whole module (its imports included) that
  ``mypy --strict`` must find clean, never run: it needs a token, a web framework or a
  database. FastAPI is not a dependency: its few names are checked against the stub in
  ``tests/docs_stubs/``.
- ``<!-- run -->`` on a ``sh`` block: run by ``bash -euo pipefail`` in an empty temporary
  directory (``examples/`` linked in), with no ``LEAT_TOKEN``: it must be self-contained
  (``--fake``).
- ``<!-- norun: reason -->`` on a ``sh`` block: not run, for the reason given (it installs, needs
  a token, a server or another terminal).

A ``python`` or ``sh`` block without one of these fails the suite, as does a fence without a
language. Blocks of other languages (``text``, ``sql``, ``json``) are not checked.
All Python blocks go to one mypy call (a few seconds with the cache).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STUBS = Path(__file__).resolve().parent / "docs_stubs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
PYTHON = {"python", "py"}
SHELL = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<how>run|typecheck|norun)\s*(?::\s*(?P<why>.*?))?\s*-->\s*$")
RUN_TIMEOUT = 30


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    how: str | None  # run, typecheck, norun, or None: unmarked
    why: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def module(self) -> str:
        """A file name for mypy, unique per block."""
        stem = re.sub(r"\W", "_", str(self.page.relative_to(ROOT).with_suffix("")))
        return f"block_{stem}_{self.line}.py"


def blocks(page: Path, text: str | None = None) -> Iterator[Block]:
    """The fenced blocks of a page (its ``text``, or else read from the file)."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, fence, indent = i, match["fence"], len(match["indent"])
        marker = MARKER.match(lines[start - 1]) if start > 0 else None  # the line just before
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        yield Block(
            page=page,
            line=start + 1,
            lang=match["lang"].lower(),
            how=marker["how"] if marker else None,
            why=(marker["why"] or "") if marker else "",
            code="\n".join(body) + "\n",
        )


BLOCKS = [block for page in PAGES for block in blocks(page)]
#: a block with one mistake (line 2 of the block, line 3 of its page) checked with the others
MISTAKE = Block(DOCS / "mistake.md", 1, "python", "typecheck", "", "x = 1\ny: str = x\n")
CHECKED = [b for b in BLOCKS if b.lang in PYTHON | SHELL]
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in PYTHON]


def unmarked(found: list[Block]) -> list[str]:
    """What is wrong with the markers of these blocks: one line per block."""
    allowed = {lang: {"run", "typecheck"} for lang in PYTHON} | {lang: {"run"} for lang in SHELL}
    wrong = []
    for block in found:
        if not block.lang:
            wrong.append(f"{block.name}: a fence without a language")
        elif block.lang in SHELL and block.how == "norun":
            if not block.why:
                wrong.append(f"{block.name}: <!-- norun: ... --> needs a reason")
        elif block.lang in allowed and block.how not in allowed[block.lang]:
            ways = " or ".join(f"<!-- {how} -->" for how in sorted(allowed[block.lang]))
            extra = " or <!-- norun: reason -->" if block.lang in SHELL else ""
            wrong.append(f"{block.name}: a {block.lang} block needs {ways}{extra}")
    return wrong


def test_every_checked_block_says_how_it_is_checked() -> None:
    assert unmarked(BLOCKS) == []
    assert len(PYTHON_BLOCKS) >= 15  # the parser found the blocks


def test_an_unmarked_block_fails() -> None:
    page = ROOT / "docs" / "example-page.md"
    text = (
        "<!-- run -->\n```python\nprint(1)\n```\n\n"  # fine
        "```python\nprint(2)\n```\n"  # no marker
        "<!-- run -->\n\n```python\nprint(3)\n```\n"  # not on the line just before
        "<!-- norun -->\n```sh\nls\n```\n"  # no reason
        "<!-- norun: a reason -->\n```python\nprint(4)\n```\n"  # Python always checked
        "```\nplain\n```\n"  # no language
        "<!-- norun: needs a token -->\n```sh\nleat-async export -o x\n```\n"  # fine
    )
    found = list(blocks(page, text))
    assert [b.line for b in found] == [2, 6, 11, 15, 19, 22, 26]
    assert [line.split(":")[1] for line in unmarked(found)] == ["6", "11", "15", "19", "22"]


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict over every Python block at once: each block's messages, by its name."""
    folder = tmp_path_factory.mktemp("blocks")
    by_file = {}
    for block in [*PYTHON_BLOCKS, MISTAKE]:
        (folder / block.module).write_text(block.code, encoding="utf-8")
        by_file[block.module] = block
    # from the root: the project's mypy settings (pyproject.toml) and cache, shared with the
    # typing tests; the files given replace its `files`
    run = subprocess.run(  # noqa: S603 - our own tool with fixed arguments
        [
            *(sys.executable, "-m", "mypy", "--strict", "--no-error-summary"),
            *(str(folder / name) for name in sorted(by_file)),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(STUBS)},
    )
    if run.returncode not in (0, 1):
        pytest.fail(f"mypy did not run: {run.stdout}{run.stderr}")
    found: dict[str, list[str]] = {block.name: [] for block in by_file.values()}
    for line in run.stdout.splitlines():
        match = re.match(r"^(.+?\.py):(\d+): (.*)$", line)
        # by the file's name: mypy's cache may replay a message with the path of an earlier run
        if match and (name := Path(match[1]).name) in by_file:
            block = by_file[name]
            where = f"{block.page.relative_to(ROOT)}:{block.line + int(match[2])}"
            found[block.name].append(f"{where}: {match[3]}")
    return found


def test_mypy_sees_a_mistake_in_a_block(mypy_errors: dict[str, list[str]]) -> None:
    assert [m.split(": error:")[0] for m in mypy_errors[MISTAKE.name]] == ["docs/mistake.md:3"]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.name)
def test_python_block_passes_mypy_strict(block: Block, mypy_errors: dict[str, list[str]]) -> None:
    assert mypy_errors[block.name] == []


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAT_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONWARNINGS"] = "error"
    return env


RUN = [b for b in CHECKED if b.how == "run"]


@pytest.mark.parametrize("block", RUN, ids=lambda b: b.name)
def test_block_runs(block: Block, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    if block.lang in PYTHON:
        (tmp_path / "block.py").write_text(block.code, encoding="utf-8")
        command = [sys.executable, "-W", "error", "block.py"]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    run = subprocess.run(  # noqa: S603 - the docs' own code, in a temporary directory
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_env(),
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, f"{block.name} exited {run.returncode}\n{run.stdout}{run.stderr}"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_generated_from_every_parser() -> None:
    from leat_async.cli import build_parser

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    hooks = _hooks()
    assert hooks.MARKER in page
    reference = hooks.on_page_markdown(page)
    assert hooks.MARKER not in reference
    top = build_parser()
    progs, todo = [], [top]  # every parser, found here independently of the hook
    while todo:
        parser = todo.pop()
        progs.append(parser.prog)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    assert {p.prog for p in hooks._parsers()} >= set(progs)
    for parser in hooks._parsers():
        assert f"## `{parser.prog}`" in reference
        for action in parser._actions:
            for option in action.option_strings:
                if action.help is not None and option != "-h":
                    assert f"`{option}" in reference, (parser.prog, option)
    assert "leat-async export" in reference and "--partition-by" in reference
    assert top.prog == "leat-async"


def test_the_readme_keeps_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = "python -m pip install -e '.[test]' && python -m pytest"
    assert test_command in readme
    assert test_command in ci.replace("pip install -q", "pip install")  # CI's runs quietly
    export = "python -m pip install . && leat-async export --fake 20000 -o transactions.jsonl"
    assert export in readme
