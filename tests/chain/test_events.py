"""The event index: logs read once and extended block by block, the embedded chain's linear-time
reader equal to eth-tester's own log filter, and an index that notices a chain reverted under it."""

from __future__ import annotations

from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.embedded_logs import embedded_logs
from tests.chain.conftest import deploy


def deployed(accounts: Any) -> Coordinator:
    return deploy(accounts)[0]


def test_the_embedded_reader_returns_what_eth_tester_returns(accounts: Any, chain: Any) -> None:
    from ape.types.events import LogFilter

    sdk = deployed(accounts)
    for i in range(2, 6):
        sdk.register(accounts[i], bytes([i]) * 32)
    sdk.set_client_banned(accounts[0], accounts[3].address, True)
    events = list(sdk.contract.contract_type.events)
    head = chain.blocks.head.number
    query = LogFilter(addresses=[sdk.address], events=events, start_block=sdk.start_block, stop_block=head)
    slow = list(chain.provider.get_contract_logs(query))
    fast = embedded_logs(chain.provider, sdk.address, events, sdk.start_block, head)
    assert fast == slow
    assert [log.event_name for log in fast] == [
        *(
            "RoleGranted",
            "RoleGranted",
            "RoleGranted",
            "RoundParametersUpdated",
            "RoundOpened",
            "RewardsFunded",
        ),
        *["ClientRegistered"] * 4,
        "ClientBanStatusChanged",
    ]
    assert embedded_logs(chain.provider, sdk.address, events, head + 1, head + 5) == []
    assert embedded_logs(object(), sdk.address, events, 0, head) is None  # another provider: ask the node


def test_the_index_reads_new_blocks_only_and_drops_a_reverted_history(accounts: Any, chain: Any) -> None:
    sdk = deployed(accounts)
    sdk.register(accounts[2], b"\x02" * 32)
    assert [r.client for r in sdk.registrations()] == [accounts[2].address]
    scanned = sdk.__dict__["_event_index"].scanned_to
    assert scanned == chain.blocks.head.number
    snapshot = chain.snapshot()
    sdk.register(accounts[3], b"\x03" * 32)
    assert [r.client for r in sdk.registrations()] == [accounts[2].address, accounts[3].address]
    assert [r.client for r in sdk.registrations(stop_block=scanned)] == [accounts[2].address]
    chain.restore(snapshot)
    sdk.register(accounts[4], b"\x04" * 32)  # the same height again, another block
    assert [r.client for r in sdk.registrations()] == [accounts[2].address, accounts[4].address]
