// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IFLBSettlement
/// @notice Events, errors and views of FLB's optimistic round settlement: a bonded finalizer
///         proposes each round's result, bonded verifiers attest it or vote on a challenge, and a
///         round's rewards become claimable only once its result is final.
/// @dev A proposal's result hash is `keccak256(abi.encode(round, parentHash, result))` with
///      `result` the `RoundResult` tuple and `parentHash` the result hash of the previous round's
///      proposal (zero for the first round this settlement handles). A proposal whose parent was
///      replaced afterwards is stale: it can be neither attested, challenged nor finalized, only
///      proposed again. Final rounds never change, so a final round is never stale.
interface IFLBSettlement {
    /// @notice What a round produced: the coordinator's `finalizeRound` fields but the count.
    struct RoundResult {
        bytes globalModelCid; // binary CIDv1 of the aggregated global adapter
        bytes reportCid; // binary CIDv1 of the round report
        bytes32 rewardsRoot; // Merkle root of cumulative rewards after the round
        uint256 roundRewards; // tokens newly allocated by the round
        uint32 metricPpm; // held-out accuracy in parts per million
        uint64 epsilonMicros; // cumulative privacy spent after the round, epsilon * 1e6
    }

    /// @notice The settlement's rules; the admin may change them (`setParameters`).
    struct Parameters {
        uint128 minFinalizerBond; // bond a finalizer needs to propose
        uint128 minVerifierBond; // bond a verifier needs to attest or vote
        uint128 challengeBond; // what a challenger posts with its challenge
        uint32 challengeWindow; // seconds after a proposal during which it may be challenged
        uint32 resolutionPeriod; // seconds a challenge has to reach a quorum before the admin may decide it
        uint32 exitDelay; // seconds between an exit request and the withdrawal of a bond
        uint8 quorum; // attestations (votes for one side) that decide a round: k of the n verifiers
        uint16 slashShareBps; // part of a slashed total paid to the winning side, in basis points
    }

    /// @notice One round's proposal as the settlement records it.
    struct ProposalView {
        address proposer;
        uint64 windowEnd; // end of the challenge window
        bool decided; // a quorum (or the admin, for a stalled challenge) decided the round
        bool isFinal; // confirmed on the coordinator: its rewards are claimable
        bool stale; // its parent's result was replaced after it was proposed: propose it again
        bytes32 resultHash;
        bytes32 parentHash;
        uint256 roundRewards;
        uint256 attestations; // verifiers who attested `resultHash`
        uint256 challengeVotes; // verifiers who voted for the open (or last) challenge
    }

    /// @notice One round's challenge as the settlement records it.
    struct ChallengeView {
        address challenger;
        bool open;
        uint8 parts; // PART_* bits the challenger says differ
        uint64 resolveBy; // after this the admin may decide a challenge no quorum decided
        uint256 bond;
        bytes32 resultHash;
    }

    /// @notice One bond holder (a finalizer or a verifier).
    struct BondView {
        uint256 amount;
        uint64 lockedUntilRound; // latest round it proposed or voted in; withdrawal waits until it is final
        uint64 exitAvailableAt; // 0 until it asks to leave; then when it may withdraw
        bool verifier; // registered as a verifier (holds an index)
        uint8 verifierIndex; // its bit in the vote bitmaps (meaningful when `verifier`)
    }

    // --- events -------------------------------------------------------------------------------
    /// @notice `account` added `amount` to its bond, which is now `bond`.
    event BondDeposited(address indexed account, uint256 amount, uint256 bond);
    /// @notice `verifier` joined the verifier set; `index` is its bit in the vote bitmaps.
    event VerifierRegistered(address indexed verifier, uint8 index);
    /// @notice `account` asked to leave; it may withdraw from `availableAt` once every round it
    ///         proposed or voted in is final.
    event ExitRequested(address indexed account, uint64 availableAt);
    /// @notice `account` left and was paid its remaining bond.
    event BondWithdrawn(address indexed account, uint256 amount);
    /// @notice `account` lost `amount` of its bond for the losing side of `round`'s challenge.
    event BondSlashed(address indexed account, uint256 indexed round, uint256 amount);
    /// @notice A finalizer proposed (or, for a stale proposal, proposed again) a round's result.
    event RoundProposed(
        uint256 indexed round, address indexed proposer, bytes32 resultHash, bytes32 parentHash, uint64 windowEnd
    );
    /// @notice A verifier attested a result of `round`: the proposal's, or the open challenge's
    ///         (a vote for it); `votes` is that result's count after this one.
    event ResultAttested(uint256 indexed round, address indexed verifier, bytes32 resultHash, uint256 votes);
    /// @notice A quorum of attestations decided `round` for its proposal without a challenge.
    event RoundDecided(uint256 indexed round, bytes32 resultHash);
    /// @notice `challenger` disputed `round`'s proposal with another result, posting `bond`.
    event RoundChallenged(
        uint256 indexed round,
        address indexed challenger,
        bytes32 resultHash,
        uint8 parts,
        uint256 bond,
        uint64 resolveBy,
        RoundResult alternative
    );
    /// @notice `round`'s challenge was decided (by a quorum, or by the admin once it stalled):
    ///         the losing side lost `slashed` in total, `winnerShare` of it went to the winner
    ///         (the challenger or the proposer) and `toPool` to the coordinator's reward pool.
    ///         `resultHash` is the round's result from now on.
    event ChallengeResolved(
        uint256 indexed round,
        bool challengerWon,
        bytes32 resultHash,
        uint256 slashed,
        uint256 winnerShare,
        uint256 toPool,
        bool byAdmin
    );
    /// @notice `round`'s open challenge ended without a decision because its proposal went stale
    ///         and was proposed again; the challenger got its bond back.
    event ChallengeCancelled(uint256 indexed round, address indexed challenger, uint256 refunded);
    /// @notice `round` is final with `resultHash`; the coordinator confirmed it.
    event RoundSettled(uint256 indexed round, bytes32 resultHash);
    /// @notice The admin changed the settlement's rules.
    event ParametersUpdated(Parameters parameters);
    /// @notice The finalizer committed to the secret of `round`'s server-side DP noise (its hash).
    event NoiseCommitted(uint256 indexed round, address indexed finalizer, bytes32 commitment);

    // --- errors -------------------------------------------------------------------------------
    /// @notice Raised by the constructor and `setParameters` for a zero bond minimum, challenge
    ///         bond, window or resolution period, a quorum of 0 or above 64, or a share above 10,000.
    error SettlementInvalidParameters();
    /// @notice Raised by `depositBond` and `registerVerifier` with an amount of zero.
    error SettlementZeroAmount();
    /// @notice Raised by `propose` when the finalizer's bond, and by `attest` when the verifier's
    ///         bond, is below the minimum (a slashed bond is zero).
    /// @param account The caller.
    /// @param bond Its bond.
    /// @param minimum The bond its role needs.
    error SettlementBondTooLow(address account, uint256 bond, uint256 minimum);
    /// @notice Raised by `registerVerifier` when the caller is a registered verifier already.
    /// @param account The caller.
    error SettlementAlreadyVerifier(address account);
    /// @notice Raised by `registerVerifier` when all 64 verifier indices are taken.
    /// @param maxVerifiers The size of the set (64).
    error SettlementVerifierSetFull(uint256 maxVerifiers);
    /// @notice Raised by `attest` when the caller is not a registered verifier holding the
    ///         verifier role.
    /// @param account The caller.
    error SettlementNotVerifier(address account);
    /// @notice Raised by `propose`, `attest`, `depositBond` and `requestExit` once the caller asked to leave.
    /// @param account The caller.
    error SettlementExiting(address account);
    /// @notice Raised by `withdrawBond` when the caller never asked to leave.
    /// @param account The caller.
    error SettlementExitNotRequested(address account);
    /// @notice Raised by `withdrawBond` before the exit delay has passed.
    /// @param account The caller.
    /// @param availableAt When it may withdraw (unix seconds).
    error SettlementExitDelayRunning(address account, uint64 availableAt);
    /// @notice Raised by `withdrawBond` while a round the caller proposed or voted in is not
    ///         final, so nobody leaves with a bond a pending challenge may still slash.
    /// @param account The caller.
    /// @param lockedUntilRound The latest round it proposed or voted in.
    /// @param finalRound The latest final round.
    error SettlementBondLocked(address account, uint256 lockedUntilRound, uint256 finalRound);
    /// @notice Raised by `propose` for a round that has a proposal that is not stale, or that this
    ///         settlement did not handle (final before it took over).
    /// @param round The round passed in.
    error SettlementAlreadyProposed(uint256 round);
    /// @notice Raised by `attest`, `challenge`, `finalize` and `resolveStalled` for a round
    ///         without a proposal.
    /// @param round The round passed in.
    error SettlementRoundNotProposed(uint256 round);
    /// @notice Raised by `attest`, `challenge`, `finalize` and `resolveStalled` for a proposal whose
    ///         parent's result was replaced after it was made: it must be proposed again.
    /// @param round The round passed in.
    /// @param parentHash The parent result hash the proposal was built on.
    /// @param currentParentHash The parent's result hash now.
    error SettlementStaleProposal(uint256 round, bytes32 parentHash, bytes32 currentParentHash);
    /// @notice Raised by `attest` when the caller proposed the round itself.
    /// @param round The round passed in.
    /// @param account The caller.
    error SettlementProposerCannotAttest(uint256 round, address account);
    /// @notice Raised by `attest` and `challenge` for a round a quorum (or the admin) decided already.
    /// @param round The round passed in.
    error SettlementRoundDecided(uint256 round);
    /// @notice Raised by `attest` when the caller attested or voted in this proposal before.
    /// @param round The round passed in.
    /// @param verifier The caller.
    error SettlementAlreadyAttested(uint256 round, address verifier);
    /// @notice Raised by `attest` for a hash that is neither the proposal's nor the open challenge's.
    /// @param round The round passed in.
    /// @param resultHash The hash passed in.
    /// @param proposalHash The proposal's result hash.
    error SettlementUnknownResult(uint256 round, bytes32 resultHash, bytes32 proposalHash);
    /// @notice Raised by `challenge` once the proposal's challenge window is over.
    /// @param round The round passed in.
    /// @param windowEnd When the window closed (unix seconds).
    error SettlementChallengeWindowClosed(uint256 round, uint64 windowEnd);
    /// @notice Raised by `challenge` when the round has an open challenge, and by `finalize` while it has.
    /// @param round The round passed in.
    error SettlementChallengeOpen(uint256 round);
    /// @notice Raised by `challenge` when `parts` names no part or an unknown one, or the
    ///         alternative's hash equals the proposal's.
    /// @param round The round passed in.
    /// @param resultHash The alternative's result hash.
    /// @param parts The parts passed in.
    error SettlementNothingChallenged(uint256 round, bytes32 resultHash, uint8 parts);
    /// @notice Raised by `challenge` when the alternative could not replace the round: a CID
    ///         that is not a 36-byte sha2-256 CIDv1 (raw or dag-pb), a metric above 1,000,000 ppm,
    ///         or rewards above the coordinator's round budget.
    /// @param round The round passed in.
    /// @param invalidParts The PART_* bits of the invalid fields.
    error SettlementInvalidAlternative(uint256 round, uint8 invalidParts);
    /// @notice Raised by `finalize` during the challenge window of a proposal no quorum decided.
    /// @param round The round passed in.
    /// @param windowEnd When the window ends (unix seconds).
    error SettlementChallengeWindowOpen(uint256 round, uint64 windowEnd);
    /// @notice Raised by `finalize` for a round that is final already.
    /// @param round The round passed in.
    error SettlementAlreadyFinal(uint256 round);
    /// @notice Raised by `finalize` for a round whose previous round is not final yet.
    /// @param round The round passed in.
    /// @param nextRound The round that must become final first.
    error SettlementRoundsOutOfOrder(uint256 round, uint256 nextRound);
    /// @notice Raised by `resolveStalled` for a round without an open challenge.
    /// @param round The round passed in.
    error SettlementNoOpenChallenge(uint256 round);
    /// @notice Raised by `resolveStalled` before the challenge's resolution period ended.
    /// @param round The round passed in.
    /// @param resolveBy When the admin may decide it (unix seconds).
    error SettlementResolutionPending(uint256 round, uint64 resolveBy);
    /// @notice Raised by `commitNoise` with a zero commitment.
    error SettlementInvalidNoiseCommitment();
    /// @notice Raised by `commitNoise` for any round but the open one, or once its commit phase ended.
    /// @param round The round passed in.
    /// @param openRound The coordinator's open round.
    /// @param deadline When the open round's commit phase ends or ended (unix seconds).
    error SettlementNoiseCommitClosed(uint256 round, uint256 openRound, uint64 deadline);
    /// @notice Raised by `commitNoise` when the round has a commitment already.
    /// @param round The round passed in.
    /// @param commitment The commitment it has.
    error SettlementNoiseAlreadyCommitted(uint256 round, bytes32 commitment);

    // --- views --------------------------------------------------------------------------------
    /// @notice The latest round that is final (the coordinator's latest confirmed round once this
    ///         settlement proposed a round; 0 before).
    function finalRound() external view returns (uint256);
    /// @notice The finalizer's commitment to `round`'s DP noise secret (zero if none).
    function noiseCommitment(uint256 round) external view returns (bytes32);
    /// @notice One round's proposal (all zero without one).
    function proposalInfo(uint256 round) external view returns (ProposalView memory);
    /// @notice One round's challenge (all zero without one).
    function challengeInfo(uint256 round) external view returns (ChallengeView memory);
    /// @notice One bond holder's record.
    function bondInfo(address account) external view returns (BondView memory);
    /// @notice The rules in force.
    function parameters() external view returns (Parameters memory);
    /// @notice `keccak256(abi.encode(round, parentHash, result))`: what verifiers attest.
    function resultHashOf(uint256 round, bytes32 parentHash, RoundResult calldata result)
        external
        pure
        returns (bytes32);
}

/// @title IFLBSettledCoordinator
/// @notice The part of the coordinator the settlement drives (see `FLBCoordinator`).
interface IFLBSettledCoordinator {
    /// @notice Records a round's proposed result and opens the next round (see `FLBCoordinator`).
    function finalizeRound(
        uint256 round,
        uint32 submissionCount,
        bytes calldata globalModelCid,
        bytes calldata reportCid,
        bytes32 rewardsRoot,
        uint256 roundRewards,
        uint32 metricPpm,
        uint64 epsilonMicros
    ) external;
    /// @notice Replaces an unconfirmed round's result; the pool moves by the rewards' difference.
    function replaceRound(uint256 round, IFLBSettlement.RoundResult calldata result, uint256 previousRewards)
        external;
    /// @notice Makes `round` (the one after the latest confirmed) confirmed: claims pay its root.
    function confirmRound(uint256 round) external;
    /// @notice Adds reward tokens to the pool (needs an ERC-20 allowance).
    function fundRewards(uint256 amount) external;
    /// @notice Most tokens one round may allocate (the open round's budget).
    function rewardPerRound() external view returns (uint256);
    /// @notice The open round and the end of its commit phase.
    function openRoundDeadline() external view returns (uint256 round, uint64 deadline);
    /// @notice The reward token.
    function rewardToken() external view returns (address);
}
