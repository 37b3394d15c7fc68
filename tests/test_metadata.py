"""What ``pip show`` and an index say about the package: the Pythons we claim and test, the
licence, the plugin entry point."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points, metadata
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
CLAIMED = ("3.11", "3.12", "3.13")  # the Pythons the README's commands are tried on


def test_the_classifiers_name_each_python_we_claim_and_a_status() -> None:
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    classifiers = project["classifiers"]
    named = {c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language")}
    assert {*CLAIMED} <= named
    assert any(c.startswith("Development Status :: ") for c in classifiers)


def test_the_installed_metadata_says_the_licence_and_loads_the_plugin() -> None:
    installed = metadata("leat-async")
    assert installed["License-Expression"] == "MIT"  # what pip show prints
    assert {*CLAIMED} <= {c.rsplit(" :: ", 1)[1] for c in installed.get_all("Classifier") or []}
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("leat_async") == "leat_async.pytest_plugin"
