"""The oracle's journal cannot be confused across chains or deployments, and it remembers failures
and pauses across restarts (so a crash-looping service does not retry forever)."""

from __future__ import annotations

from pathlib import Path

from oracle.journal import Journal, RoundJournal, journal_key

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # the first contract any dev chain deploys


def test_the_same_address_on_two_chains_or_deployments_keeps_separate_rounds(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "oracle.sqlite")
    keys = [journal_key(31337, CONTRACT, 1), journal_key(1337, CONTRACT, 1), journal_key(31337, CONTRACT, 9)]
    assert len(set(keys)) == 3
    for n, key in enumerate(keys):
        RoundJournal(journal, key, 1).save("sync", {"updates": n})
        journal.set_checkpoint(key, 100 + n)
    assert [RoundJournal(journal, key, 1).load("sync") for key in keys] == [
        {"updates": 0},
        {"updates": 1},
        {"updates": 2},
    ]
    assert [journal.checkpoint(key) for key in keys] == [100, 101, 102]


def test_failures_count_in_a_row_and_pauses_survive_a_restart(tmp_path: Path) -> None:
    key = journal_key(31337, CONTRACT, 1)
    journal = Journal(tmp_path / "oracle.sqlite")
    assert journal.record_failure(key, 3, "score", "AggregationError: x") == 1
    assert journal.record_failure(key, 3, "score", "AggregationError: x") == 2
    assert journal.record_failure(key, 3, "score", "AggregationError: y") == 1  # another failure
    journal.set_paused(key, "round 3, step score: AggregationError: y")
    journal.close()
    reopened = Journal(tmp_path / "oracle.sqlite")
    assert reopened.pause_reason(key) == "round 3, step score: AggregationError: y"
    assert reopened.record_failure(key, 3, "score", "AggregationError: y") == 2
    reopened.set_paused(key, None)
    reopened.clear_failures(key)
    assert reopened.pause_reason(key) is None
    assert reopened.record_failure(key, 3, "score", "AggregationError: y") == 1
