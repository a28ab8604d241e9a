// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IFLBSettlement} from "./IFLBSettlement.sol";

/// @title IFLBCoordinator
/// @notice Events, errors and views of the FLB round coordinator: clients register a dataset
///         commitment bound to their address, commit to one LoRA update (an IPFS CID) per round
///         and reveal it once the commit phase closed, and claim cumulative rewards with a Merkle
///         proof; the oracle finalizes each round with the new global model.
/// @dev A round has three phases: commit `[opened, deadline)`, reveal
///      `[deadline, deadline + revealDuration)`, then due (the oracle may finalize). The commit
///      phase closes early (the deadline moves to that block) once every active client committed,
///      or in a sampled round once its whole cohort committed; the round is due early once every
///      pending commitment was revealed.
///      Cohorts: with a cohort size K > 0 and more than K registered clients when a round opens,
///      the round samples exactly K of them (`CohortDrawn`, `isCohortMember`) and only those may
///      commit; otherwise every registered client may, as with K = 0.
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
        bytes32 cohortSeed; // seed of the round's cohort draw; 0 when every client may commit
        uint32 cohortSize; // clients drawn; 0 when every client may commit
        uint32 cohortPopulation; // registered clients the cohort was drawn from (indices below it)
        bool confirmed; // claims pay this round's root or a later one's (always, without a settlement)
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
        uint32 registrationIndex; // 0 for the first client registered, 1 for the next ...
        bool exited; // asked to leave (`requestExit`); `bondOf` says when its bond is released
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
    /// @notice A round opened with a cohort: exactly `size` of the `population` clients registered
    ///         then (registration indices below `population`) were drawn by `seed`, and only they
    ///         may commit. Anyone re-derives the members from the seed (see `CohortSampling`).
    event CohortDrawn(uint256 indexed round, bytes32 seed, uint32 size, uint32 population);
    /// @notice The admin set the cohort size of rounds from `effectiveFromRound` on (0: everyone).
    event CohortSizeUpdated(uint32 cohortSize, uint256 effectiveFromRound);
    /// @notice Reward tokens were added to the pool.
    event RewardsFunded(address indexed funder, uint256 amount, uint256 totalFunded);
    /// @notice A client was paid the part of its cumulative reward it had not claimed yet.
    event RewardClaimed(address indexed client, uint256 amount, uint256 cumulativeAmount);
    /// @notice The admin set the durations and reward budget of rounds from `effectiveFromRound` on.
    event RoundParametersUpdated(
        uint64 roundDuration, uint64 revealDuration, uint256 rewardPerRound, uint256 effectiveFromRound
    );

    /// @notice The admin handed round decisions to `settlement`; every round up to
    ///         `latestConfirmedRound` is confirmed.
    event SettlementSet(address indexed settlement, uint256 latestConfirmedRound);
    /// @notice The settlement confirmed `round`: claims now check `rewardsRoot`.
    event RoundConfirmed(uint256 indexed round, bytes32 rewardsRoot);
    /// @notice The settlement replaced an unconfirmed round's result with `result`; the pool
    ///         moved by `result.roundRewards - previousRewards`.
    event RoundReplaced(uint256 indexed round, IFLBSettlement.RoundResult result, uint256 previousRewards);

    // --- errors -------------------------------------------------------------------------------
    /// @notice Raised by `register` when the caller registered before (a banned client included).
    /// @param client The caller.
    error CoordinatorAlreadyRegistered(address client);
    /// @notice Raised by `register` when the dataset commitment it would store is already registered.
    /// @param datasetCommitment The bound commitment, `boundCommitment(msg.sender, manifestDigest)`.
    /// @param owner The client that registered it.
    error CoordinatorCommitmentTaken(bytes32 datasetCommitment, address owner);
    /// @notice Raised by `register` with a zero manifest digest and by `commitUpdate` with a zero
    ///         commitment.
    error CoordinatorInvalidCommitment();
    /// @notice Raised by `commitUpdate`, `revealUpdate` and `requestExit` when the caller never
    ///         registered, and by `setClientBanned` for an address that never registered.
    /// @param client The caller of `commitUpdate`, or the address passed to `setClientBanned`.
    error CoordinatorNotRegistered(address client);
    /// @notice Raised by `commitUpdate`, `revealUpdate` and `requestExit` when the caller is banned.
    /// @param client The caller.
    error CoordinatorClientBanned(address client);
    /// @notice Raised by `commitUpdate` and `revealUpdate` for any round but the open one, and by
    ///         `finalizeRound` for a round after the open one.
    /// @param given The round passed in.
    /// @param current The open round.
    error CoordinatorWrongRound(uint256 given, uint256 current);
    /// @notice Raised by `commitUpdate` once the open round's commit phase has ended.
    /// @param round The open round.
    /// @param deadline When its commit phase ended (unix seconds).
    error CoordinatorRoundClosed(uint256 round, uint64 deadline);
    /// @notice Raised by `commitUpdate` when the round samples a cohort and the caller is not in it.
    /// @param client The caller.
    /// @param round The open round.
    /// @param cohortSize Clients drawn for the round.
    /// @param population Registered clients the cohort was drawn from.
    error CoordinatorNotInCohort(address client, uint256 round, uint32 cohortSize, uint32 population);
    /// @notice Raised by `drawCohort` when the open round is sampled already, has a commitment,
    ///         or the pending cohort size is 0 or at least the registered clients.
    /// @param round The open round.
    /// @param cohortSize The pending cohort size.
    /// @param registeredClients Clients registered so far.
    error CoordinatorCohortNotDrawable(uint256 round, uint32 cohortSize, uint32 registeredClients);
    /// @notice Raised by `commitUpdate` when the caller already committed in this round.
    /// @param client The caller.
    /// @param round The open round.
    error CoordinatorAlreadyCommitted(address client, uint256 round);
    /// @notice Raised by `revealUpdate` when the caller made no commitment in this round.
    /// @param client The caller.
    /// @param round The open round.
    error CoordinatorNotCommitted(address client, uint256 round);
    /// @notice Raised by `revealUpdate` while the round's commit phase is still running.
    /// @param round The open round.
    /// @param opensAt When the commit phase ends and reveals open (unix seconds).
    error CoordinatorRevealNotOpen(uint256 round, uint64 opensAt);
    /// @notice Raised by `revealUpdate` once the round's reveal window has closed.
    /// @param round The open round.
    /// @param closedAt When the reveal window closed (unix seconds).
    error CoordinatorRevealClosed(uint256 round, uint64 closedAt);
    /// @notice Raised by `revealUpdate` when `computeCommitment(msg.sender, round, cid, numSamples,
    ///         salt)` does not match the caller's commitment for the round.
    /// @param client The caller.
    /// @param round The open round.
    error CoordinatorCommitmentMismatch(address client, uint256 round);
    /// @notice Raised by `revealUpdate` when the caller already revealed its update in this round.
    /// @param client The caller.
    /// @param round The open round.
    error CoordinatorAlreadySubmitted(address client, uint256 round);
    /// @notice Raised by `revealUpdate` when the update claims zero training samples.
    /// @param numSamples The sample count passed in (0).
    error CoordinatorInvalidSampleCount(uint64 numSamples);
    /// @notice Raised by the constructor, `revealUpdate` and `finalizeRound` for a CID that is not a
    ///         36-byte binary CIDv1 with the raw (0x55) or dag-pb (0x70) codec and a sha2-256 digest.
    /// @param cid The refused bytes.
    error CoordinatorInvalidCid(bytes cid);
    /// @notice Raised by `finalizeRound` for a round that was finalized before.
    /// @param round The round passed in.
    error CoordinatorRoundAlreadyFinalized(uint256 round);
    /// @notice Raised by `finalizeRound` before the round is due: its commit phase is still running,
    ///         or commitments are still unrevealed while the reveal window is open.
    /// @param round The open round.
    /// @param deadline When its commit phase ends or ended (unix seconds).
    /// @param revealDeadline When its reveal window closes (unix seconds).
    /// @param pendingReveals Commitments of non-banned clients not revealed yet.
    error CoordinatorRoundNotDue(uint256 round, uint64 deadline, uint64 revealDeadline, uint32 pendingReveals);
    /// @notice Raised by `finalizeRound` when the oracle's count of reveals differs from the round's,
    ///         e.g. a reveal landed after the oracle read the round.
    /// @param round The open round.
    /// @param given The count passed in.
    /// @param actual The reveals recorded for the round.
    error CoordinatorSubmissionCountMismatch(uint256 round, uint32 given, uint32 actual);
    /// @notice Raised by `finalizeRound` when it would allocate more than the round's reward budget.
    /// @param roundRewards Tokens the oracle wanted to allocate.
    /// @param rewardPerRound The round's budget.
    error CoordinatorRewardsExceedBudget(uint256 roundRewards, uint256 rewardPerRound);
    /// @notice Raised by `finalizeRound` when the pool holds fewer unallocated tokens than it allocates.
    /// @param roundRewards Tokens the oracle wanted to allocate.
    /// @param available Funded tokens not allocated to any round yet.
    error CoordinatorPoolUnderfunded(uint256 roundRewards, uint256 available);
    /// @notice Raised by `finalizeRound` when the metric exceeds 1,000,000 parts per million.
    /// @param metricPpm The metric passed in.
    error CoordinatorMetricOutOfRange(uint32 metricPpm);
    /// @notice Raised by the constructor and `setRoundParameters` for a zero round duration.
    /// @param roundDuration The duration passed in (0).
    error CoordinatorInvalidRoundDuration(uint64 roundDuration);
    /// @notice Raised by the constructor and `setRoundParameters` for a zero reveal duration.
    /// @param revealDuration The duration passed in (0).
    error CoordinatorInvalidRevealDuration(uint64 revealDuration);
    /// @notice Raised by `claim` when the proof does not lead from the leaf (msg.sender,
    ///         cumulativeAmount) to the rewards root of the latest confirmed round
    ///         (`latestConfirmedRound`: the latest finalized one without a settlement; before any
    ///         round is confirmed that root is zero, so every claim is refused).
    /// @param client The caller.
    /// @param cumulativeAmount The cumulative amount claimed.
    error CoordinatorInvalidProof(address client, uint256 cumulativeAmount);
    /// @notice Raised by `claim` when the proven cumulative amount is not above what the caller
    ///         was already paid.
    /// @param client The caller.
    /// @param cumulativeAmount The proven cumulative amount.
    /// @param claimed What the caller was paid so far.
    error CoordinatorNothingToClaim(address client, uint256 cumulativeAmount, uint256 claimed);
    /// @notice Raised by `claim` when it would pay more than finalized rounds allocated and nobody
    ///         claimed yet: a rewards tree holding more than the oracle declared cannot drain the
    ///         unallocated pool.
    /// @param amount What the claim would pay.
    /// @param owed Tokens allocated and not claimed yet.
    error CoordinatorClaimExceedsAllocation(uint256 amount, uint256 owed);
    /// @notice Raised by `fundRewards` with an amount of zero.
    error CoordinatorZeroAmount();
    /// @notice Raised by `setSettlement` with the zero address or once a settlement is set.
    /// @param given The address passed in.
    /// @param current The settlement set already (zero if none).
    error CoordinatorInvalidSettlement(address given, address current);
    /// @notice Raised by `confirmRound` for any round but the one after the latest confirmed (if
    ///         finalized), and by `replaceRound` for a round that is confirmed or not finalized.
    /// @param round The round passed in.
    /// @param latestConfirmed The latest confirmed round.
    /// @param currentRound The open round.
    error CoordinatorRoundNotPending(uint256 round, uint256 latestConfirmed, uint256 currentRound);

    // --- views --------------------------------------------------------------------------------
    /// @notice The round that is open now (rounds start at 1).
    function currentRound() external view returns (uint256);
    /// @notice The latest round whose rewards root claims check: the latest finalized one without
    ///         a settlement, the latest the settlement confirmed with one.
    function latestConfirmedRound() external view returns (uint256);
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
    /// @notice Whether `client` may train in `round` by the cohort rule: in a round without a
    ///         cohort every registered client is a member; in a sampled round exactly the drawn
    ///         ones. O(1): nothing but the round's seed, size and population is stored. Bans are a
    ///         separate rule (a banned member still cannot commit).
    function isCohortMember(uint256 round, address client) external view returns (bool);
}
