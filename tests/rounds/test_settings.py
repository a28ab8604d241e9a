"""Round settings have one owner: the oracle's configuration inherits them, none is lost on the way,
and a bad strategy fails when the configuration is read, not when a round is due."""

from __future__ import annotations

import pytest

from flb_dapp.config import FLBSettings, OracleConfig
from flb_dapp.exceptions import RoundError
from flb_dapp.rounds import RoundRules, RoundSettings
from oracle.pipeline import settings_for_rounds


def test_every_round_rule_is_an_oracle_key_with_the_same_default() -> None:
    oracle = OracleConfig()
    for name in RoundRules.model_fields:
        assert getattr(oracle, name) == getattr(RoundRules(), name), name
    assert "dp_seed" not in OracleConfig.model_fields  # the secret never comes from the YAML


def test_every_configured_rule_reaches_the_round() -> None:
    values = {
        "strategy": {"name": "trimmed-mean", "beta": 0.2},
        "scoring": "prototype",
        "shapley_exact_max": 6,
        "shapley_budget": 99,
        "score_tolerance": 1e-4,
        "score_dtype": "float64",
        "score_decimals": 8,
        "norm_factor": 5.0,
        "duplicate_cosine": 0.9,
        "max_update_bytes": 1 << 20,
        "fetch_timeout_s": 7.0,
        "fetch_retry_s": 0.25,  # the key the first build dropped between the YAML and the round
        "fetch_concurrency": 2,
        "fetch_round_budget_s": 30.0,
        "max_updates": 9,
        "privacy_delta": 1e-6,
        "privacy_budget": 8.0,
    }
    assert set(values) == set(RoundRules.model_fields)
    settings = settings_for_rounds(FLBSettings(oracle=OracleConfig(**values)))
    assert settings.model_dump() == {**values, "dp_seed": None}
    assert settings.describe() == values  # what a report records: every rule, never the seed


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"name": "krum"}, "invalid strategy {'name': 'krum'}: unknown strategy 'krum'; choose one of"),
        ({"beta": 0.2}, "the strategy needs a name"),
        ({"name": "trimmed-mean", "beat": 0.2}, "invalid strategy {'name': 'trimmed-mean', 'beat': 0.2}"),
    ],
)
def test_a_bad_strategy_fails_when_the_configuration_is_read(
    strategy: dict[str, object], message: str
) -> None:
    with pytest.raises(RoundError) as caught:
        FLBSettings(oracle={"strategy": strategy})  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_round_settings_from_a_report_ignore_a_seed() -> None:
    settings = RoundSettings.from_description({"scoring": "prototype", "dp_seed": 11, "seed": 12})
    assert settings.dp_seed is None and settings.scoring == "prototype"


def test_a_score_tolerance_outside_zero_to_one_is_refused() -> None:
    from flb_dapp.exceptions import RoundError

    for bad in (-1e-5, 1.0):
        with pytest.raises(RoundError, match=rf"score_tolerance must be in \[0, 1\), got {bad}"):
            RoundRules(score_tolerance=bad)
