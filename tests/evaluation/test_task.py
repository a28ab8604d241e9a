"""The bundled task: deterministic, hidden rules, unseen test creatures, skewed client shares."""

from __future__ import annotations

from collections import Counter

import pytest

from flb_dapp.evaluation.datasets import LETTERS
from flb_dapp.evaluation.task import SyntheticTask, make_task, split_non_iid
from flb_dapp.exceptions import ConfigError


def creature(question: str) -> str:
    return question.split(" the ")[1].split(" ")[0]


def test_deterministic_from_the_seed() -> None:
    assert make_task(5) == make_task(5)
    assert make_task(5).train != make_task(6).train


def test_sizes_ids_and_schema(task: SyntheticTask) -> None:
    assert (len(task.train), len(task.dev), len(task.test)) == (400, 16, 200)
    questions = [*task.train, *task.dev, *task.test]
    assert len({q.question_id for q in questions}) == len(questions)
    for q in questions:
        assert len(q.options) == 4 and q.answer == LETTERS[q.answer_index]
        assert q.category in {"habitat", "diet"}
    assert Counter(q.category for q in task.test) == {"habitat": 100, "diet": 100}


def test_answers_follow_a_hidden_rule_of_the_name(task: SyntheticTask) -> None:
    """Prefix decides the habitat, suffix the diet: one answer per affix, across all splits."""
    rule: dict[tuple[str, str], set[int]] = {}
    for q in (*task.train, *task.dev, *task.test):
        prefix, _, suffix = creature(q.question).split("-")
        affix = prefix if q.category == "habitat" else suffix
        rule.setdefault((q.category, affix), set()).add(q.answer_index)
    assert len(rule) == 8 and all(len(v) == 1 for v in rule.values())
    assert {next(iter(v)) for (c, _), v in rule.items() if c == "diet"} == {0, 1, 2, 3}


def test_test_creatures_are_unseen(task: SyntheticTask) -> None:
    seen = {creature(q.question) for q in (*task.train, *task.dev)}
    unseen = {creature(q.question) for q in task.test}
    assert len(unseen) == 100 and not unseen & seen
    middles = {c.split("-")[1] for c in seen}
    assert not {c.split("-")[1] for c in unseen} & middles  # not even the middle part


def test_texts_never_include_the_test_split(task: SyntheticTask) -> None:
    corpus = "\n".join(task.texts())
    assert not any(creature(q.question) in corpus for q in task.test)


def test_non_iid_split_is_skewed_complete_and_deterministic(task: SyntheticTask) -> None:
    shares = task.split_non_iid(3, seed=0)
    assert sorted(q.question_id for s in shares for q in s) == sorted(q.question_id for q in task.train)
    assert shares == task.split_non_iid(3, seed=0) and shares != task.split_non_iid(3, seed=1)
    for client, share in enumerate(shares):
        home = sum(1 for q in share if q.answer_index % 3 == client)
        assert home / len(share) > 0.6  # skew 0.8: most of a client's answers are its own letters
        assert {q.answer for q in share} == set("ABCD")  # but every letter still appears


def test_split_extremes_and_errors(task: SyntheticTask) -> None:
    iso = split_non_iid(task.train, 4, skew=1.0)
    assert all({q.answer_index for q in share} == {i} for i, share in enumerate(iso))
    assert split_non_iid(task.train, 1) == [list(task.train)]
    with pytest.raises(ConfigError):
        split_non_iid(task.train, 0)
    with pytest.raises(ConfigError):
        split_non_iid(task.train, 2, skew=1.5)
