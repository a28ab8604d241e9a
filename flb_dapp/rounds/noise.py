"""Binding the oracle to its server-side DP noise before it knows the round.

The noise must stay secret (anyone who knows it can subtract it from the global model), so nobody
can recompute it; what anyone can check is that the oracle could not choose it. Before a round's
commit phase ends the oracle commits to the round's secret, ``keccak256`` of
:func:`round_secret` (``FLBSettlement.commitNoise``); the noise is then drawn from the secret
mixed with the hash of the first block at or after the deadline (:func:`noise_seed`), which
nobody knew when the commitment was made. The round's inputs carry the commitment and that block
(:class:`NoiseBinding`), and so does its report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

_DOMAIN = b"flb/dp-noise/v1"


def round_secret(dp_seed: int, round_number: int) -> bytes:
    """The oracle's secret for one round, derived from its long-lived DP seed."""
    return keccak(_DOMAIN + f":{dp_seed}:{round_number}".encode())


def noise_commitment(secret: bytes) -> bytes:
    """What the oracle publishes before the round: ``keccak256(secret)``."""
    return keccak(secret)


def noise_seed(secret: bytes, block_hash: bytes) -> int:
    """The seed the round's noise is drawn from: the secret mixed with public randomness."""
    return int.from_bytes(keccak(_DOMAIN + secret + block_hash), "big")


@dataclass(frozen=True)
class NoiseBinding:
    """A round's noise commitment and the block whose hash was mixed into its noise."""

    commitment: str  # 0x-hex, on chain before the round's commit phase ended
    block: int  # the first block at or after the commit deadline
    block_hash: str  # 0x-hex

    def seed(self, dp_seed: int, round_number: int) -> int:
        """The noise seed, for the holder of ``dp_seed``; raises if the commitment is not its own."""
        secret = round_secret(dp_seed, round_number)
        if "0x" + noise_commitment(secret).hex() != self.commitment:
            raise ValueError(
                f"round {round_number}'s noise commitment {self.commitment} is not this DP seed's: "
                "the seed changed after the commitment; restore the seed the round was committed with"
            )
        return noise_seed(secret, bytes.fromhex(self.block_hash[2:]))

    def to_json(self) -> dict[str, Any]:
        return {"commitment": self.commitment, "block": self.block, "block_hash": self.block_hash}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoiseBinding:
        return cls(str(data["commitment"]), int(data["block"]), str(data["block_hash"]))
