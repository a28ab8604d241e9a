"""Tasks that scale with the federation: every client of 100 or 1,000 gets exactly its questions,
``skew`` sets the share of its home letter as documented, and the seed fixes everything."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from flb_dapp.evaluation.task import home_letter, make_task, make_task_for, split_by_letter
from flb_dapp.exceptions import ConfigError


@pytest.mark.parametrize("clients", [100, 1000])
def test_each_client_gets_exactly_its_questions_and_none_is_shared(clients: int) -> None:
    task, shares = make_task_for(clients, per_client=6, skew=0.8, seed=3)
    assert [len(s) for s in shares] == [6] * clients
    ids = [q.question_id for share in shares for q in share]
    assert len(ids) == len(set(ids)) == clients * 6
    assert set(ids) <= {q.question_id for q in task.train}
    test_names = {q.question.split(" the ")[1] for q in task.test}
    assert not any(q.question.split(" the ")[1] in test_names for share in shares for q in share)


@pytest.mark.parametrize(("skew", "home"), [(1.0, 10), (0.8, 8), (0.5, 5), (0.25, 2), (0.0, 0)])
def test_skew_is_the_share_of_the_home_letter(skew: float, home: int) -> None:
    _, shares = make_task_for(40, per_client=10, skew=skew, seed=1)
    for client, share in enumerate(shares):
        letters = Counter(q.answer_index for q in share)
        assert letters[home_letter(client)] == home
        away = sorted(v for k, v in letters.items() if k != home_letter(client))
        # the other questions cycle through the three other letters: counts differ by at most one
        assert sum(away) == 10 - home and (not away or max(away) - min(away) <= 1)
        assert len(away) == min(3, 10 - home)


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = make_task_for(100, per_client=4, skew=0.8, seed=7)
    assert make_task_for(100, per_client=4, skew=0.8, seed=7) == first
    assert make_task_for(100, per_client=4, skew=0.8, seed=8)[1] != first[1]


def test_the_bundled_three_client_task_is_unchanged() -> None:
    """make_task's default path must not move: the pinned numbers of the other tests depend on it.
    The digest is the one the task gave before it could scale."""
    task = make_task(0)
    records = [q.to_record() for q in (*task.train, *task.dev, *task.test)]
    digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    assert digest == "d32617cb05d9de9bfd1cf8885d74eae2512aabc5264db13f94b8e05f064cbd78"


def test_too_few_questions_of_a_letter_and_bad_arguments_are_refused() -> None:
    task = make_task(0, n_train=20)
    with pytest.raises(ConfigError, match="too few questions per answer letter"):
        split_by_letter(task.train, 100, 4)
    with pytest.raises(ConfigError, match="skew"):
        split_by_letter(task.train, 2, 2, skew=1.5)
    with pytest.raises(ConfigError, match="exceed the names"):
        make_task(0, n_train=3000)
    with pytest.raises(ConfigError):
        make_task_for(0, 4)
