// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FLBRewardToken
/// @notice The fixed-supply ERC-20 token FLB pays contribution rewards in.
contract FLBRewardToken is ERC20 {
    /// @param holder Receives the whole supply (the operator, who funds the reward pool).
    /// @param supply Number of tokens (in the smallest unit) ever minted.
    constructor(address holder, uint256 supply) ERC20("FLB Reward", "FLBR") {
        _mint(holder, supply);
    }
}
