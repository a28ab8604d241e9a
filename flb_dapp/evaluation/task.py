"""The bundled task: multiple-choice questions about made-up creatures, built from a seed.

Each creature's name ``<prefix>-<middle>-<suffix>`` hides two rules: the prefix decides where it
lives, the suffix what it eats (a seeded secret mapping). The test split holds creatures whose names
were never trained on, so a model must learn the rules rather than the names. Split across clients
with :func:`split_non_iid`, each client sees mostly some answer letters: alone a client learns a
biased rule, together (FedAvg) they learn it all. On the tiny test model this moves held-out
accuracy from chance to well above it within seconds, which is what the federated tests need.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from flb_dapp.evaluation.datasets import LETTERS, MCQuestion
from flb_dapp.evaluation.prompts import format_question
from flb_dapp.exceptions import ConfigError

HABITATS = ("forest", "river", "mountain", "desert")
DIETS = ("berries", "fish", "insects", "seeds")
PREFIXES = ("zor", "kel", "mip", "tav")
SUFFIXES = ("ax", "un", "ol", "ir")
SYLLABLES = ("ba", "de", "fi", "go", "hu", "la", "me", "no", "pu", "ri", "sa", "te", "vo", "wu", "ye")
TEMPLATES = {
    "habitat": ("Where does the {e} live?", HABITATS),
    "diet": ("What does the {e} eat?", DIETS),
}


@dataclass(frozen=True)
class SyntheticTask:
    """Train / dev (few-shot pool) / test questions; test creatures never appear in train or dev."""

    train: tuple[MCQuestion, ...]
    dev: tuple[MCQuestion, ...]
    test: tuple[MCQuestion, ...]
    seed: int

    def split_non_iid(self, n_clients: int, seed: int = 0, skew: float = 0.8) -> list[list[MCQuestion]]:
        """The train split dealt to ``n_clients`` with skewed answer letters (see :func:`split_non_iid`)."""
        return split_non_iid(self.train, n_clients, seed=seed, skew=skew)

    def texts(self) -> list[str]:
        """Text to train a tokenizer on: train and dev prompts with answers (never the test split)."""
        return [f"{format_question(q)}\n{q.answer}" for q in (*self.train, *self.dev)]


def make_task(seed: int = 0, n_train: int = 200, n_dev: int = 8, n_test: int = 100) -> SyntheticTask:
    """Build the task deterministically: ``n_*`` creatures per split, two questions per creature."""
    if min(n_train, n_dev, n_test) < 0:
        raise ConfigError("creature counts must be >= 0")
    rng = random.Random(seed)
    # The hidden rules: which prefix means which habitat, which suffix which diet.
    habitat_of = dict(zip(PREFIXES, rng.sample(range(4), 4), strict=True))
    diet_of = dict(zip(SUFFIXES, rng.sample(range(4), 4), strict=True))
    middles = ["".join(p) for p in itertools.permutations(SYLLABLES, 2)]
    rng.shuffle(middles)
    # Test creatures get middles that train/dev never use, so their names are unseen.
    n_test_mid = max(1, len(middles) // 4)
    test_mid, seen_mid = middles[:n_test_mid], middles[n_test_mid:]

    def creatures(n: int, pool: Sequence[str], taken: set[str]) -> list[str]:
        names: list[str] = []
        while len(names) < n:
            name = f"{rng.choice(PREFIXES)}-{rng.choice(pool)}-{rng.choice(SUFFIXES)}"
            if name not in taken:
                taken.add(name)
                names.append(name)
        return names

    taken: set[str] = set()
    splits = {
        "train": creatures(n_train, seen_mid, taken),
        "dev": creatures(n_dev, seen_mid, taken),
        "test": creatures(n_test, test_mid, taken),
    }
    next_id = itertools.count()
    built: dict[str, tuple[MCQuestion, ...]] = {}
    for split, names in splits.items():
        questions = []
        for name in names:
            prefix, _, suffix = name.split("-")
            answers = {"habitat": habitat_of[prefix], "diet": diet_of[suffix]}
            for category, (template, options) in TEMPLATES.items():
                index = answers[category]
                questions.append(
                    MCQuestion(
                        question_id=next(next_id),
                        question=template.format(e=name),
                        options=options,
                        answer=LETTERS[index],
                        answer_index=index,
                        category=category,
                        src=f"flb-synthetic/{split}",
                    )
                )
        built[split] = tuple(questions)
    return SyntheticTask(built["train"], built["dev"], built["test"], seed)


def split_non_iid(
    questions: Sequence[MCQuestion], n_clients: int, seed: int = 0, skew: float = 0.8
) -> list[list[MCQuestion]]:
    """Deal questions to clients by answer letter: with probability ``skew`` a question goes to its
    letter's home client (``answer_index % n_clients``), otherwise to a uniformly drawn other client.

    ``skew = 1/n_clients`` is IID-like; ``skew = 1`` gives each client only its own letters.
    """
    if n_clients < 1:
        raise ConfigError(f"n_clients must be >= 1, got {n_clients}")
    if not 0.0 <= skew <= 1.0:
        raise ConfigError(f"skew must be in [0, 1], got {skew}")
    rng = random.Random(seed)
    shares: list[list[MCQuestion]] = [[] for _ in range(n_clients)]
    for q in questions:
        home = q.answer_index % n_clients
        if n_clients == 1 or rng.random() < skew:
            shares[home].append(q)
        else:
            shares[rng.choice([c for c in range(n_clients) if c != home])].append(q)
    return shares
