"""Fixtures of the API tests: one real federation per session, its index, and the app over it."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from flb_api.core.config import ApiSettings, Secret
from flb_api.core.db import Database
from flb_api.indexer import Indexer
from flb_api.main import create_app

from tests.api.federation import Federation, build_federation

with warnings.catch_warnings():
    # NOTE: Starlette warns that its TestClient wants httpx2 some day; httpx is what we have.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
ORACLE_TOKEN = "oracle-token-for-tests-0123456789"


def make_indexer(fed: Federation, path: Path, **options: Any) -> Indexer:
    options.setdefault("start_block", fed.record.block)
    return Indexer(
        Database(path),
        fed.coordinator,
        fed.store,
        deployment_block=fed.record.block,
        network=fed.record.network,
        **options,
    )


def api_settings(tmp: Path, **changes: Any) -> ApiSettings:
    base = ApiSettings(
        database=str(tmp / "unused.sqlite"),
        operator_token=Secret("FLB_API_TOKEN", OPERATOR_TOKEN),
        oracle_token=Secret("FLB_ORACLE_TOKEN", ORACLE_TOKEN),
    )
    return replace(base, **changes)


@pytest.fixture(scope="session")
def federation_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("federation")


@pytest.fixture(scope="session")
def federation(accounts: Any, federation_dir: Path) -> Federation:
    """Two finalized rounds (real training, real round computation) and an open third round.

    The index ``early.sqlite`` is synced right after round 1, then left alone (the catch-up test)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def after(fed: Federation, number: int) -> None:
        if number == 1:
            early = make_indexer(fed, federation_dir / "early.sqlite")
            early.sync()
            early.db.close()

    return build_federation(accounts, federation_dir, after_round=after)


@pytest.fixture(scope="session")
def indexer(federation: Federation, federation_dir: Path) -> Indexer:
    idx = make_indexer(federation, federation_dir / "index.sqlite")
    idx.sync()
    return idx


@pytest.fixture(scope="session")
def app(indexer: Indexer, federation_dir: Path) -> FastAPI:
    return create_app(api_settings(federation_dir), indexer=indexer, poll=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def early_copy(federation: Federation, federation_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the index synced after round 1."""
    target = tmp_path / "early.sqlite"
    shutil.copy(federation_dir / "early.sqlite", target)
    return target
