"""The testing kit as a user's project meets it: pytest loads the plugin by itself, and an
``async def`` test asking for ``leat_client`` runs with no conftest and no configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USERS_TESTS = """
from leat_async import GiftcardNotFoundError
import pytest


async def test_a_card_is_found_by_its_code(leat_fake, leat_client):
    card = leat_fake.add_card(balance_in_cents=1500)
    found = await leat_client.giftcards.find_by_hash(card.hash)
    assert found.uuid == card.uuid


async def test_an_unknown_code_is_not_found(leat_client):
    with pytest.raises(GiftcardNotFoundError):
        await leat_client.giftcards.find_by_hash("NO-SUCH-CODE")


def test_a_plain_test_is_left_alone():
    assert True
"""


@pytest.mark.parametrize("mode", [None, "auto"])  # None: strict, the default
def test_a_fresh_project_runs_async_tests_with_the_two_fixtures(
    tmp_path: Path, mode: str | None
) -> None:
    (tmp_path / "test_checkout.py").write_text(USERS_TESTS)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if mode is not None:
        args += ["-o", f"asyncio_mode={mode}"]
    done = subprocess.run(  # noqa: S603 - our own interpreter
        args, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
    # pytest-asyncio may warn of its own unset option; nothing of ours warns
    assert "leat_async" not in done.stdout and "ResourceWarning" not in done.stdout
