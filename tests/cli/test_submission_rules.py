"""The CLI's own pre-flight rules raise the class of the contract error they anticipate."""

from __future__ import annotations

import pytest

from flb_dapp.cli.submission import check_adapter
from flb_dapp.exceptions import CoordinatorInvalidSampleCount, PreflightError
from flb_dapp.lora import Adapter, AdapterMetadata

CLIENT = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"


def test_an_adapter_without_samples_is_refused_as_the_contract_would() -> None:
    metadata = AdapterMetadata(
        base_model="tiny",
        r=4,
        lora_alpha=8,
        target_modules=("q_proj",),
        round=2,
        client=CLIENT,
        num_samples=0,
    )
    with pytest.raises(CoordinatorInvalidSampleCount, match="records no training samples") as caught:
        check_adapter(Adapter(tensors={}, metadata=metadata), CLIENT, 2, "tiny")
    assert caught.value.num_samples == 0 and isinstance(caught.value, PreflightError)
