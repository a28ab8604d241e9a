"""The dataset commitment: a canonical manifest of the data files, hashed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flb_dapp.dataset import MANIFEST_FORMAT, commit_dataset
from flb_dapp.exceptions import DataNotFoundError


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


FILES = {"b.jsonl": b'{"q": 2}\n', "a.jsonl": b'{"q": 1}\n', "sub/c.parquet": b"PAR1..."}


def expected_commitment(files: dict[str, bytes]) -> str:
    """Computed independently from the module: the documented manifest, then sha256."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "files": [
            {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for p, d in sorted(files.items())
        ],
    }
    encoded = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "0x" + hashlib.sha256(encoded).hexdigest()


def test_folder_commitment_matches_the_documented_manifest(tmp_path: Path) -> None:
    root = write(tmp_path / "data", FILES)
    commitment = commit_dataset(root)
    assert [e.path for e in commitment.entries] == ["a.jsonl", "b.jsonl", "sub/c.parquet"]
    assert commitment.hex == expected_commitment(FILES)
    assert len(commitment.digest) == 32 and commitment.total_bytes == sum(map(len, FILES.values()))


def test_same_data_same_commitment_whatever_the_order_or_hidden_files(tmp_path: Path) -> None:
    one = write(tmp_path / "one", FILES)
    two = write(tmp_path / "two", dict(reversed(list(FILES.items()))))
    write(two, {".DS_Store": b"junk", ".cache/x": b"junk"})
    assert commit_dataset(one).hex == commit_dataset(two).hex


@pytest.mark.parametrize("change", ["content", "rename", "add", "remove"])
def test_any_change_to_the_data_changes_the_commitment(tmp_path: Path, change: str) -> None:
    root = write(tmp_path / "data", FILES)
    before = commit_dataset(root).hex
    if change == "content":
        (root / "a.jsonl").write_bytes(b'{"q": 9}\n')
    elif change == "rename":
        (root / "a.jsonl").rename(root / "z.jsonl")
    elif change == "add":
        (root / "d.json").write_bytes(b"[]")
    else:
        (root / "b.jsonl").unlink()
    assert commit_dataset(root).hex != before


def test_a_single_file_is_named_by_its_base_name(tmp_path: Path) -> None:
    path = write(tmp_path, {"questions.jsonl": b"x"}) / "questions.jsonl"
    seen: list[tuple[int, int]] = []
    commitment = commit_dataset(path, progress=lambda done, total: seen.append((done, total)))
    assert commitment.hex == expected_commitment({"questions.jsonl": b"x"})
    assert seen[-1] == (1, 1)


def test_missing_or_empty_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no data at"):
        commit_dataset(tmp_path / "absent")
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no data files in"):
        commit_dataset(tmp_path / "empty")
