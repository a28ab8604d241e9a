"""Fixtures of the attack tests."""

from __future__ import annotations

import pytest

from tests.adversarial.lab import RoundLab, build_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> RoundLab:
    return build_lab(tmp_path_factory.mktemp("round-lab"))
