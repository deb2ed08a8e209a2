"""Fixtures for tests/; the helpers themselves live in gradekit.py."""
from __future__ import annotations

import pytest

from gradekit import require_env


@pytest.fixture
def bwrap_required():
    from grader.isolation import bwrap_works

    require_env("DLGRADE_REQUIRE_BWRAP", bwrap_works(), "bubblewrap is not usable on this machine")

