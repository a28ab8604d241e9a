"""The bundled task: multiple-choice questions about made-up creatures, built from a seed.

Each creature's name ``<prefix>-<middle>-<suffix>`` hides two rules: the prefix decides where it
lives, the suffix what it eats (a seeded secret mapping). The test split holds creatures whose names
were never trained on, so a model must learn the rules rather than the names. Split across clients
with :func:`split_non_iid`, each client sees mostly some answer letters: alone a client learns a
biased rule, together (FedAvg) they learn it all. On the tiny test model this moves held-out
accuracy from chance to well above it within seconds, which is what the federated tests need.

:func:`make_task_for` sizes the task for a federation of any size (100 or 10,000 clients) and
:func:`split_by_letter` deals each client exactly the number of questions asked for, with a home
letter that ``skew`` of them answer: ``split_non_iid`` only has four home clients (one per letter).
"""

from __future__ import annotations

import itertools
import math
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

    def split_by_letter(
        self, n_clients: int, per_client: int, skew: float = 0.8, seed: int = 0
    ) -> list[list[MCQuestion]]:
        """``per_client`` train questions for each of ``n_clients`` (see :func:`split_by_letter`)."""
        return split_by_letter(self.train, n_clients, per_client, skew=skew, seed=seed)

    def texts(self) -> list[str]:
        """Text to train a tokenizer on: train and dev prompts with answers (never the test split)."""
        return [f"{format_question(q)}\n{q.answer}" for q in (*self.train, *self.dev)]


def make_task(
    seed: int = 0, n_train: int = 200, n_dev: int = 8, n_test: int = 100, middle_syllables: int = 2
) -> SyntheticTask:
    """Build the task deterministically: ``n_*`` creatures per split, two questions per creature.

    Names have ``middle_syllables`` distinct syllables in the middle: 2 allows 2,528 train + dev
    creatures, 3 allows 32,768 (the default 2 keeps the bundled task as it always was)."""
    if min(n_train, n_dev, n_test) < 0:
        raise ConfigError("creature counts must be >= 0")
    if middle_syllables not in (2, 3):
        raise ConfigError(f"middle_syllables must be 2 or 3, got {middle_syllables}")
    rng = random.Random(seed)
    # The hidden rules: which prefix means which habitat, which suffix which diet.
    habitat_of = dict(zip(PREFIXES, rng.sample(range(4), 4), strict=True))
    diet_of = dict(zip(SUFFIXES, rng.sample(range(4), 4), strict=True))
    middles = ["".join(p) for p in itertools.permutations(SYLLABLES, middle_syllables)]
    rng.shuffle(middles)
    # Test creatures get middles that train/dev never use, so their names are unseen.
    n_test_mid = max(1, len(middles) // 4)
    test_mid, seen_mid = middles[:n_test_mid], middles[n_test_mid:]
    per_middle = len(PREFIXES) * len(SUFFIXES)
    if n_train + n_dev > len(seen_mid) * per_middle or n_test > n_test_mid * per_middle:
        # NOTE: names are drawn until unique; past the name space that would never end.
        raise ConfigError(
            f"{n_train} + {n_dev} train/dev and {n_test} test creatures exceed the names "
            f"{middle_syllables} middle syllables allow ({len(seen_mid) * per_middle} and "
            f"{n_test_mid * per_middle})"
        )

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


def make_task_for(
    n_clients: int, per_client: int, skew: float = 0.8, seed: int = 0, n_test: int = 100
) -> tuple[SyntheticTask, list[list[MCQuestion]]]:
    """A task whose train split gives each of ``n_clients`` exactly ``per_client`` questions under
    :func:`split_by_letter` with ``skew``, and those shares; deterministic from the arguments.

    The train split grows until every answer letter has the questions the shares need (letters
    come from the hidden rules, so their counts vary around a quarter each)."""
    if n_clients < 1 or per_client < 1:
        raise ConfigError(f"need >= 1 client and >= 1 question each, got {n_clients} x {per_client}")
    needed = n_clients * per_client
    creatures = max(8, math.ceil(needed / 2 * 1.2))
    while True:
        task = make_task(seed, n_train=creatures, n_test=n_test, middle_syllables=3)
        try:
            return task, task.split_by_letter(n_clients, per_client, skew=skew, seed=seed)
        except _LetterShortage:
            creatures = math.ceil(creatures * 1.25)


class _LetterShortage(ConfigError):
    """The questions hold too few of one answer letter for the shares asked for."""


def home_letter(client: int) -> int:
    """The answer index most of a client's questions have under :func:`split_by_letter`."""
    return client % 4


def split_by_letter(
    questions: Sequence[MCQuestion], n_clients: int, per_client: int, skew: float = 0.8, seed: int = 0
) -> list[list[MCQuestion]]:
    """Deal exactly ``per_client`` questions to each of ``n_clients``, none to two clients.

    Client ``c``'s home letter is ``c % 4`` (:func:`home_letter`): ``round(skew * per_client)`` of
    its questions have that answer, the rest cycle through the three other letters. So ``skew =
    0.25`` gives every letter about equally (IID-like letters), ``skew = 1`` only the home letter.
    Which questions of a letter a client gets is drawn from ``seed``. Raises ConfigError when the
    questions hold too few of some letter.
    """
    if n_clients < 1 or per_client < 1:
        raise ConfigError(f"need >= 1 client and >= 1 question each, got {n_clients} x {per_client}")
    if not 0.0 <= skew <= 1.0:
        raise ConfigError(f"skew must be in [0, 1], got {skew}")
    rng = random.Random(seed)
    pools: list[list[MCQuestion]] = [[q for q in questions if q.answer_index == i] for i in range(4)]
    for pool in pools:
        rng.shuffle(pool)
    home_count = round(skew * per_client)
    wanted: list[list[int]] = []  # each client's letters, in dealing order
    for client in range(n_clients):
        home = home_letter(client)
        others = [i for i in range(4) if i != home]
        away = [others[(client + j) % 3] for j in range(per_client - home_count)]
        wanted.append([home] * home_count + away)
    demand = [sum(letters.count(i) for letters in wanted) for i in range(4)]
    short = [f"{LETTERS[i]}: {len(pools[i])} < {demand[i]}" for i in range(4) if len(pools[i]) < demand[i]]
    if short:
        raise _LetterShortage(f"too few questions per answer letter for these shares ({', '.join(short)})")
    return [[pools[letter].pop() for letter in letters] for letters in wanted]
