// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IFLBCoordinator
/// @notice Events, errors and views of the FLB round coordinator: clients register a dataset
///         commitment, submit one LoRA update (an IPFS CID) per round, and claim cumulative
///         rewards with a Merkle proof; the oracle finalizes each round with the new global model.
interface IFLBCoordinator {
    /// @notice Everything an explorer needs about one round.
    struct RoundView {
        uint256 round;
        uint64 deadline;
        uint64 finalizedAt; // 0 while the round is open
        uint32 submissions;
        uint32 metricPpm; // headline metric (held-out accuracy) in parts per million
        uint64 epsilonMicros; // cumulative privacy spent after this round, epsilon * 1e6
        bytes globalModelCid; // binary CIDv1; for round 0 the initial model
        bytes reportCid; // binary CIDv1 of the round report; empty for round 0
        bytes32 rewardsRoot; // Merkle root of cumulative rewards after this round
    }

    /// @notice Everything an explorer needs about one client.
    struct ClientView {
        bool registered;
        bool banned;
        uint64 lastSubmittedRound;
        uint32 submissions;
        uint128 claimed;
        bytes32 datasetCommitment;
    }

    // --- events -------------------------------------------------------------------------------
    /// @notice A client joined with the hash of its dataset manifest.
    event ClientRegistered(address indexed client, bytes32 indexed datasetCommitment, uint256 round);
    /// @notice The admin banned or unbanned a client.
    event ClientBanStatusChanged(address indexed client, bool banned);
    /// @notice A client published its update for a round.
    event UpdateSubmitted(uint256 indexed round, address indexed client, bytes cid, uint64 numSamples);
    /// @notice The oracle closed a round with its new global model, report and rewards.
    event RoundFinalized(
        uint256 indexed round,
        bytes globalModelCid,
        bytes reportCid,
        bytes32 rewardsRoot,
        uint256 roundRewards,
        uint32 metricPpm,
        uint64 epsilonMicros
    );
    /// @notice A new round opened; it trains from the previous round's global model.
    event RoundOpened(uint256 indexed round, uint64 deadline);
    /// @notice Reward tokens were added to the pool.
    event RewardsFunded(address indexed funder, uint256 amount, uint256 totalFunded);
    /// @notice A client was paid the part of its cumulative reward it had not claimed yet.
    event RewardClaimed(address indexed client, uint256 amount, uint256 cumulativeAmount);
    /// @notice The admin changed the duration or the reward budget of future rounds.
    event RoundParametersUpdated(uint64 roundDuration, uint256 rewardPerRound);

    // --- errors -------------------------------------------------------------------------------
    error CoordinatorAlreadyRegistered(address client);
    error CoordinatorCommitmentTaken(bytes32 datasetCommitment, address owner);
    error CoordinatorInvalidCommitment();
    error CoordinatorNotRegistered(address client);
    error CoordinatorClientBanned(address client);
    error CoordinatorWrongRound(uint256 given, uint256 current);
    error CoordinatorRoundClosed(uint256 round, uint64 deadline);
    error CoordinatorAlreadySubmitted(address client, uint256 round);
    error CoordinatorInvalidSampleCount(uint64 numSamples);
    error CoordinatorInvalidCid(bytes cid);
    error CoordinatorRoundAlreadyFinalized(uint256 round);
    error CoordinatorRoundNotDue(uint256 round, uint64 deadline, uint32 submissions, uint32 activeClients);
    error CoordinatorRewardsExceedBudget(uint256 roundRewards, uint256 rewardPerRound);
    error CoordinatorPoolUnderfunded(uint256 roundRewards, uint256 available);
    error CoordinatorMetricOutOfRange(uint32 metricPpm);
    error CoordinatorInvalidRoundDuration(uint64 roundDuration);
    error CoordinatorInvalidProof(address client, uint256 cumulativeAmount);
    error CoordinatorNothingToClaim(address client, uint256 cumulativeAmount, uint256 claimed);
    error CoordinatorClaimExceedsAllocation(uint256 amount, uint256 owed);
    error CoordinatorZeroAmount();

    // --- views --------------------------------------------------------------------------------
    /// @notice The round that is open now (rounds start at 1).
    function currentRound() external view returns (uint256);
    /// @notice One round's record.
    function roundInfo(uint256 round) external view returns (RoundView memory);
    /// @notice One client's record.
    function clientInfo(address client) external view returns (ClientView memory);
    /// @notice Cumulative rewards paid to a client (the old prototype's score API).
    function scoreOf(address client) external view returns (uint256);
}
