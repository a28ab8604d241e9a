// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CohortSampling
/// @notice Exactly-K client sampling without storing the cohort: a seeded permutation of the
///         registration indices `[0, population)`; a client is in the cohort when its index lands
///         on one of the first `size` positions.
/// @dev The permutation is a 4-round balanced Feistel network on `2 * half` bits, the smallest
///      even width whose domain `4^half` holds the population (so the domain is under 4x the
///      population), with cycle-walking: outputs at or above the population are encrypted again
///      until one lands inside, which keeps it a bijection on exactly `[0, population)`. A walk
///      takes under 4 encryptions on average and more than `t` with probability below `(3/4)^t`,
///      so a membership check is O(1): it depends on neither the population nor the cohort size.
///      The round function is `keccak256(seed, (round << 64) | half-word)` truncated to `half`
///      bits. `flb_dapp.chain.cohort` mirrors this exactly.
library CohortSampling {
    uint256 internal constant FEISTEL_ROUNDS = 4;

    /// @notice Whether registration index `index` is in the cohort of `size` drawn by `seed` from
    ///         `population` registered clients.
    function isMember(uint256 seed, uint256 index, uint256 size, uint256 population) internal pure returns (bool) {
        if (index >= population) return false;
        if (size >= population) return true;
        return position(seed, index, population) < size;
    }

    /// @notice Where `index` lands in the seeded permutation of `[0, population)`.
    function position(uint256 seed, uint256 index, uint256 population) internal pure returns (uint256 x) {
        uint256 half = halfBits(population);
        x = _encrypt(seed, index, half);
        while (x >= population) x = _encrypt(seed, x, half);
    }

    /// @notice The smallest `half >= 1` with `4^half >= population`.
    function halfBits(uint256 population) internal pure returns (uint256 half) {
        half = 1;
        while ((uint256(1) << (2 * half)) < population) ++half;
    }

    function _encrypt(uint256 seed, uint256 x, uint256 half) private pure returns (uint256) {
        uint256 mask = (uint256(1) << half) - 1;
        uint256 left = x >> half;
        uint256 right = x & mask;
        for (uint256 r = 0; r < FEISTEL_ROUNDS; ++r) {
            uint256 f;
            // Scratch space only: no memory grows however long the walk.
            assembly ("memory-safe") {
                mstore(0x00, seed)
                mstore(0x20, or(shl(64, r), right))
                f := keccak256(0x00, 0x40)
            }
            (left, right) = (right, left ^ (f & mask));
        }
        return (left << half) | right;
    }
}
