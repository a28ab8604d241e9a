"""``flb cid FILE [--v0]``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from flb_dapp.cli.main import cli
from tests.storage.conftest import vector_bytes


def test_flb_cid_prints_v1_and_v0(tmp_path: Path) -> None:
    path = tmp_path / "f300k"
    path.write_bytes(vector_bytes("f300k", 307_200))
    runner = CliRunner()
    result = runner.invoke(cli, ["cid", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == "bafybeifyjdi4ieozhfn4chkevc673fjkma2lhvfkcpt5exujowvnzc6ure\n"
    result = runner.invoke(cli, ["cid", "--v0", str(path)])
    assert result.output == "QmbVtyCkcKbtxZj29pBsFuNMaw7RHXgZvwSfWj7MfJoyfY\n"


def test_flb_cid_stores_nothing_and_refuses_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cid", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert list(tmp_path.iterdir()) == []
