"""MkDocs hook: the CLI reference, rendered from the argparse parsers at build time.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it with every
command's description, usage, options (by group) and epilog, read from
``leat_async.cli.build_parser()`` and the fake server's own parser. Nothing is written by hand,
so the page cannot drift from the code. ``tests/test_docs.py`` renders it too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = "88"  # the usage lines' width, whatever the terminal the build runs in


def _parsers() -> Iterator[argparse.ArgumentParser]:
    """``leat-async`` and all its subcommands, then ``python -m leat_async.testing``."""
    from leat_async.cli import build_parser
    from leat_async.testing.__main__ import _parser as fake_parser

    yield from _with_subcommands(build_parser())
    yield fake_parser()


def _with_subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser``, then every subcommand's, depth first (``leat-async giftcards find``)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _with_subcommands(sub)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        return ", ".join(f"`{s}`" for s in action.option_strings)
    if action.metavar is not None:
        value = str(action.metavar)
    elif action.choices is not None:
        value = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        value = action.dest.upper()
    return ", ".join(f"`{s} {value}`" for s in action.option_strings)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:
        text = text % {**vars(action), "prog": parser.prog}
    if action.required:
        text = f"(required) {text}"
    return _cell(text)


def _render(parser: argparse.ArgumentParser) -> Iterator[str]:
    yield f"## `{parser.prog}`"
    yield ""
    if parser.description:
        yield parser.description
        yield ""
    yield "```text"
    yield parser.format_usage().strip()
    yield "```"
    yield ""
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)
        ]
        if not actions:
            continue
        yield f"**{group.title}**"
        yield ""
        yield "| Option | Meaning |"
        yield "| --- | --- |"
        for action in actions:
            yield f"| {_option(action)} | {_help(parser, action)} |"
        yield ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield "**commands**"
            yield ""
            for choice in action._choices_actions:
                # the heading's id: "leat-async-export", "leat-async-giftcards-find"
                anchor = f"{parser.prog} {choice.dest}".replace(" ", "-")
                yield f"- [`{choice.dest}`](#{anchor}): {_cell(choice.help or '')}"
            yield ""
    if parser.epilog:
        yield parser.epilog
        yield ""


def cli_reference() -> str:
    """The reference as Markdown: one section per command."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return "\n".join(line for parser in _parsers() for line in _render(parser))
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
