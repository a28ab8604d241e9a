// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IFLBCoordinator
/// @notice Events, errors and views of the FLB round coordinator: clients register a dataset
///         commitment bound to their address, commit to one LoRA update (an IPFS CID) per round
///         and reveal it once the commit phase closed, and claim cumulative rewards with a Merkle
///         proof; the oracle finalizes each round with the new global model.
/// @dev A round has three phases: commit `[opened, deadline)`, reveal
///      `[deadline, deadline + revealDuration)`, then due (the oracle may finalize). The commit
///      phase closes early (the deadline moves to that block) once every active client committed;
///      the round is due early once every pending commitment was revealed.
interface IFLBCoordinator {
    /// @notice Everything an explorer needs about one round.
    struct RoundView {
        uint256 round;
        uint64 deadline; // end of the commit phase, start of the reveal window
        uint64 revealDeadline; // end of the reveal window; exact for the open round only, 0 for others
        uint64 finalizedAt; // 0 while the round is open
        uint32 submissions; // reveals that landed
        uint32 pendingReveals; // commitments of non-banned clients not revealed yet
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
        uint64 lastSubmittedRound; // latest round whose update the client revealed
        uint32 submissions; // reveals so far
        uint128 claimed;
        bytes32 datasetCommitment; // keccak256(abi.encode(client, manifestDigest))
        uint64 committedRound; // latest round the client committed in
        bytes20 commitment; // the first 20 bytes of that round's commitment
    }

    // --- events -------------------------------------------------------------------------------
    /// @notice A client joined; `datasetCommitment` is its manifest digest bound to its address.
    event ClientRegistered(address indexed client, bytes32 indexed datasetCommitment, uint256 round);
    /// @notice The admin banned or unbanned a client.
    event ClientBanStatusChanged(address indexed client, bool banned);
    /// @notice A client committed to its update for a round without disclosing it.
    event UpdateCommitted(uint256 indexed round, address indexed client, bytes32 commitment);
    /// @notice Every active client committed: the commit phase ended at `at` and reveals are open.
    event CommitPhaseClosed(uint256 indexed round, uint64 at);
    /// @notice A client revealed its update for a round (the CID matches its commitment).
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
    /// @notice The admin set the durations and reward budget of rounds from `effectiveFromRound` on.
    event RoundParametersUpdated(
        uint64 roundDuration, uint64 revealDuration, uint256 rewardPerRound, uint256 effectiveFromRound
    );

    // --- errors -------------------------------------------------------------------------------
    error CoordinatorAlreadyRegistered(address client);
    error CoordinatorCommitmentTaken(bytes32 datasetCommitment, address owner);
    error CoordinatorInvalidCommitment();
    error CoordinatorNotRegistered(address client);
    error CoordinatorClientBanned(address client);
    error CoordinatorWrongRound(uint256 given, uint256 current);
    error CoordinatorRoundClosed(uint256 round, uint64 deadline);
    error CoordinatorAlreadyCommitted(address client, uint256 round);
    error CoordinatorNotCommitted(address client, uint256 round);
    error CoordinatorRevealNotOpen(uint256 round, uint64 opensAt);
    error CoordinatorRevealClosed(uint256 round, uint64 closedAt);
    error CoordinatorCommitmentMismatch(address client, uint256 round);
    error CoordinatorAlreadySubmitted(address client, uint256 round);
    error CoordinatorInvalidSampleCount(uint64 numSamples);
    error CoordinatorInvalidCid(bytes cid);
    error CoordinatorRoundAlreadyFinalized(uint256 round);
    error CoordinatorRoundNotDue(uint256 round, uint64 deadline, uint64 revealDeadline, uint32 pendingReveals);
    error CoordinatorSubmissionCountMismatch(uint256 round, uint32 given, uint32 actual);
    error CoordinatorRewardsExceedBudget(uint256 roundRewards, uint256 rewardPerRound);
    error CoordinatorPoolUnderfunded(uint256 roundRewards, uint256 available);
    error CoordinatorMetricOutOfRange(uint32 metricPpm);
    error CoordinatorInvalidRoundDuration(uint64 roundDuration);
    error CoordinatorInvalidRevealDuration(uint64 revealDuration);
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
    /// @notice The commitment `commitUpdate` expects for an update.
    function computeCommitment(address client, uint256 round, bytes calldata cid, uint64 numSamples, bytes32 salt)
        external
        pure
        returns (bytes32);
    /// @notice The dataset commitment `register(manifestDigest)` stores for `client`.
    function boundCommitment(address client, bytes32 manifestDigest) external pure returns (bytes32);
}
