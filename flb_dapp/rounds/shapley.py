"""Values of a coalition game: exact Shapley, leave-one-out, and sampled estimates for large games.

Pure arithmetic over a value function ``v`` of coalitions, written as bit masks over players
``0..n-1`` (player ``i`` is in coalition ``m`` when bit ``i`` is set); ``v(0) = 0``. The round's
contribution game is built in ``rounds/coalitions.py``: ``v(S)`` is how much lower the loss of the
aggregate of ``S``'s updates is than the previous global model's.

Sampling is driven by :class:`HashStream`, a SHA-256 counter stream rather than numpy's generators,
so that the draws depend on the seed alone (not on a library version) and any verifier, in any
language, replays the same permutations.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Protocol

Value = Callable[[int], float]


class Game(Protocol):
    """A coalition game whose values cost an evaluation the first time they are asked for."""

    n: int
    evaluations: int

    def value(self, mask: int) -> float: ...


def full_mask(n: int) -> int:
    return (1 << n) - 1


def exact_shapley(n: int, value: Value) -> list[float]:
    """Shapley values by enumeration: ``phi_i = sum_S |S|! (n-|S|-1)! / n! (v(S+i) - v(S))``.

    Asks ``v`` for every one of the ``2**n`` coalitions exactly once, so keep ``n`` small.
    """
    if n == 0:
        return []
    weight = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    values = [value(mask) for mask in range(1 << n)]
    phi = [0.0] * n
    for mask in range(1 << n):
        size = mask.bit_count()
        for i in range(n):
            if not mask >> i & 1:
                phi[i] += weight[size] * (values[mask | 1 << i] - values[mask])
    return phi


def leave_one_out(n: int, value: Value) -> list[float]:
    """``v(N) - v(N - i)``: what the grand coalition loses without player ``i``."""
    everyone = full_mask(n)
    total = value(everyone)
    return [total - value(everyone & ~(1 << i)) for i in range(n)]


class HashStream:
    """Deterministic uniform integers from SHA-256(seed || counter), by rejection sampling."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._pool = b""

    def _next64(self) -> int:
        if len(self._pool) < 8:
            self._pool += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        chunk, self._pool = self._pool[:8], self._pool[8:]
        return int.from_bytes(chunk, "big")

    def below(self, bound: int) -> int:
        """Uniform in ``[0, bound)`` without modulo bias."""
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            draw = self._next64()
            if draw < limit:
                return draw % bound

    def permutation(self, n: int) -> list[int]:
        """A uniform permutation of ``0..n-1`` (Fisher-Yates)."""
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return order

    def coalition(self, n: int) -> int:
        """A uniform subset of ``0..n-1`` (each player in with probability 1/2)."""
        mask = 0
        for start in range(0, n, 64):
            mask |= self._next64() >> max(0, 64 - (n - start)) << start
        return mask


def _marginals(order: Sequence[int], value: Value, phi: list[float]) -> None:
    """Add each player's marginal value along ``order`` (coalitions grow from empty to full)."""
    mask, previous = 0, 0.0
    for player in order:
        mask |= 1 << player
        current = value(mask)
        phi[player] += current - previous
        previous = current


def monte_carlo_shapley(game: Game, budget: int, stream: HashStream) -> tuple[list[float], int]:
    """Permutation sampling with antithetic pairs (each permutation, then its reverse).

    A permutation asks for at most ``n - 1`` new values (the empty and full coalitions are known
    once), so ``budget // (n - 1)`` permutations, rounded down to pairs, keep within ``budget``
    whatever the cache saves; one pair is always drawn, so every player gets an estimate. The
    number depends on ``n`` and ``budget`` alone. Returns the values and the permutations used.
    """
    n = game.n
    phi = [0.0] * n
    pairs = max(1, budget // (2 * max(n - 1, 1)))
    for _ in range(pairs):
        order = stream.permutation(n)
        _marginals(order, game.value, phi)
        _marginals(order[::-1], game.value, phi)
    return [p / (2 * pairs) for p in phi], 2 * pairs


def sampled_banzhaf(game: Game, budget: int, stream: HashStream) -> tuple[list[float], int]:
    """Banzhaf values by maximum sample reuse (Wang and Jia 2023): every sampled coalition informs
    every player, ``beta_i = mean v(S | i in S) - mean v(S | i not in S)``. ``max(budget, 2 n)``
    coalitions are drawn (repeats cost no evaluation); a side of a player that was never sampled
    counts as the full (or empty) coalition. Returns the values and the coalitions drawn.
    """
    n = game.n
    samples = max(budget, 2 * n)
    inside = [0.0] * n
    outside = [0.0] * n
    count_in = [0] * n
    for _ in range(samples):
        mask = stream.coalition(n)
        v = game.value(mask)
        for i in range(n):
            if mask >> i & 1:
                inside[i] += v
                count_in[i] += 1
            else:
                outside[i] += v
    everyone = game.value(full_mask(n))
    beta = []
    for i in range(n):
        with_i = inside[i] / count_in[i] if count_in[i] else everyone
        without_i = outside[i] / (samples - count_in[i]) if samples - count_in[i] else 0.0
        beta.append(with_i - without_i)
    return beta, samples


def stratified_shapley(game: Game, budget: int, stream: HashStream) -> tuple[list[float], int]:
    """Shapley values with the two outer strata exact and the inner ones sampled.

    ``phi_i`` is the mean over coalition sizes ``k`` of ``i``'s mean marginal at size ``k``. At
    ``k = 0`` that is ``v({i})`` and at ``k = n - 1`` it is leave-one-out: ``2 n`` evaluations give
    both exactly. When clients' data overlap, most of the value sits there (the first update
    brings most of the improvement, the last almost none), and plain permutation sampling spends
    its budget guessing who came first. The inner sizes are sampled along antithetic permutations
    within what remains of ``budget`` (``n - 3`` new coalitions each); a player never seen inside
    takes the mean of its two outer marginals. Returns the values and the permutations used.
    """
    n = game.n
    if n <= 2:
        return exact_shapley(n, game.value), 0
    everyone = full_mask(n)
    first = [game.value(1 << i) for i in range(n)]
    last = [game.value(everyone) - game.value(everyone & ~(1 << i)) for i in range(n)]
    inner_sum, inner_count = [0.0] * n, [0] * n
    pairs = max(0, budget - game.evaluations) // (2 * max(n - 3, 1))
    for _ in range(pairs):
        order = stream.permutation(n)
        for walk in (order, order[::-1]):
            mask, previous = 0, 0.0
            for position, player in enumerate(walk):
                mask |= 1 << player
                current = game.value(mask)
                if 0 < position < n - 1:
                    inner_sum[player] += current - previous
                    inner_count[player] += 1
                previous = current
    phi = []
    for i in range(n):
        inner = inner_sum[i] / inner_count[i] if inner_count[i] else (first[i] + last[i]) / 2
        phi.append((first[i] + last[i] + (n - 2) * inner) / n)
    return phi, 2 * pairs


def stratified_affordable(n: int, budget: int) -> bool:
    """Whether ``budget`` buys the stratified estimator's outer strata (``2 n + 1`` evaluations:
    each player alone, everyone, everyone but each player) and at least one antithetic pair of
    inner walks (``2 (n - 3)`` more)."""
    return budget >= 2 * n + 1 + 2 * max(n - 3, 1)


def sampled_shapley(game: Game, budget: int, stream: HashStream) -> tuple[str, list[float], int]:
    """Shapley values estimated within about ``budget`` evaluations: stratified where the budget
    affords an inner sample, else antithetic permutations. (rule name, values, permutations)

    NOTE: without an inner sample the stratified estimate is the mean of each client's two outer
    marginals, which is biased and not efficient: with non-IID clients every client's update
    alone makes the model worse, so all of them come out negative and a round whose aggregate
    improved would pay nobody (measured: 20 of 100 clients, budget 64). Permutation sampling is
    unbiased and efficient (the values sum to ``v(N)``) however few permutations it draws.
    """
    if stratified_affordable(game.n, budget):
        values, permutations = stratified_shapley(game, budget, stream)
        return "shapley-stratified", values, permutations
    values, permutations = monte_carlo_shapley(game, budget, stream)
    return "shapley-permutations", values, permutations
