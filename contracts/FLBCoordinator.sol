// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IFLBCoordinator} from "./interfaces/IFLBCoordinator.sol";
import {CohortSampling} from "./CohortSampling.sol";
import {IFLBSettlement} from "./interfaces/IFLBSettlement.sol";
import {ClientAdmission} from "./ClientAdmission.sol";

/// @title FLBCoordinator
/// @notice Drives federated LoRA fine-tuning rounds: registration, one committed-then-revealed
///         update per client per round, oracle finalization with the new global model, and
///         cumulative Merkle rewards.
/// @dev Commit-reveal closes the front-running window: during the commit phase only
///      `keccak256(abi.encode(client, round, cid, numSamples, salt))` is public, and a commitment
///      binds its sender, so nobody can submit a CID that someone else revealed.
///      Storage is packed so that a commit and a reveal each touch three warm-able slots and write
///      two already non-zero ones, and a finalization costs the same for 1 or 1,000 clients:
///      per-client rewards live in the Merkle tree, not here. CIDs are kept as (codec, sha2-256
///      digest); the views rebuild the binary CIDv1.
///      Cohorts cost nothing while the cohort size is 0: a round records whether it is sampled in
///      its own slot, which every commit reads anyway. A sampled round stores one more slot (seed,
///      size, population) when it opens, and a member's commit reads its registration index: the
///      cohort itself is never stored, membership is recomputed per call (`CohortSampling`).
///      Settlement costs nothing either: whether a settlement decides rounds, and the latest round
///      it confirmed, share the pool's slot, which finalize and claim read anyway. Without a
///      settlement every finalized round is confirmed at once (today's behaviour); with one,
///      `finalizeRound` records a proposal (only the settlement may call it), claims pay the root
///      of the latest confirmed round, and the settlement confirms (`confirmRound`) or replaces
///      (`replaceRound`) each round in order (see `FLBSettlement`).
///      Admission (allowlist, registration bonds, exits) is `ClientAdmission`'s.
contract FLBCoordinator is IFLBCoordinator, ClientAdmission, Pausable {
    using SafeERC20 for IERC20;

    /// @notice May finalize rounds while no settlement is set.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    /// @notice Held by the settlement contract only (`setSettlement`): finalizes rounds once it is
    ///         set, and confirms or replaces their results.
    bytes32 public constant SETTLEMENT_ROLE = keccak256("SETTLEMENT_ROLE");

    /// @notice The ERC-20 token rewards are paid in.
    IERC20 public immutable rewardToken;

    // One slot: the open round's parameters and the counters every transaction reads.
    struct Config {
        uint32 currentRound;
        uint32 activeClients;
        uint32 roundDuration;
        uint32 revealDuration;
        uint128 rewardPerRound;
    }

    // One slot: the parameters the next round opens with (the admin's latest choice), and the
    // registration count, which fixes the population a round's cohort is drawn from. Both are
    // read when a round opens; the count lives here because this slot is non-zero from the
    // constructor on, so a registration rewrites it (5,000 gas) instead of filling a new one.
    struct PendingParameters {
        uint32 roundDuration;
        uint32 revealDuration;
        uint128 rewardPerRound;
        uint32 cohortSize; // 0: every registered client trains
        uint32 registeredClients; // banned ones included: registration indices are never reused
    }

    // One slot per round for the fields that change; the digests are written once at finalize.
    struct RoundSlot {
        uint40 deadline; // end of the commit phase
        uint40 finalizedAt;
        uint32 submissions; // reveals
        uint32 pendingReveals; // commits of non-banned clients not revealed yet
        uint24 metricPpm; // at most 1,000,000 (checked before it is stored)
        uint64 epsilonMicros;
        uint8 globalCodec;
        uint8 reportCodec;
        bool sampled; // the round has a cohort (`RoundRecord.cohort`); false: everyone may commit
    }

    // One slot, written only for a sampled round, when it opens.
    struct CohortSlot {
        uint192 seed;
        uint32 size;
        uint32 population;
    }

    struct RoundRecord {
        RoundSlot slot;
        bytes32 globalDigest;
        bytes32 reportDigest;
        bytes32 rewardsRoot;
        CohortSlot cohort;
    }

    enum ClientStatus {
        None,
        Active,
        Banned,
        Exited // asked to leave (`requestExit`): never active again; its bond is released later
    }

    // One slot per client, non-zero from registration on: a commit and a reveal update it in place.
    // The commitment is kept truncated to 160 bits: binding a client to a CID it chose before
    // seeing the others' reveals needs second-preimage resistance only, 2^160 work here.
    struct ClientSlot {
        ClientStatus status;
        uint32 committedRound;
        uint32 lastSubmittedRound; // latest revealed round
        uint24 submissions;
        bytes20 commitment;
    }

    // The two balances that finalize and claim must check share one slot that funding makes
    // non-zero, so neither transaction ever pays to fill an empty slot (20,000 gas). The same slot
    // says whether a settlement decides rounds and which round it confirmed last, so finalize
    // picks the role it requires and claim the root it checks without reading another slot.
    // 104 bits hold 2 * 10^13 tokens of 18 decimals.
    struct Pool {
        uint104 unallocated; // funded, not yet allocated to any round
        uint104 owed; // allocated, not yet claimed
        uint32 confirmedRound; // meaningful once `settled`; before, every finalized round is confirmed
        bool settled;
    }

    Config private _config;
    PendingParameters private _pending;
    Pool private _pool;
    uint256 private _totalFunded;
    address private _settlement;
    mapping(uint256 round => RoundRecord) private _rounds;
    mapping(address client => ClientSlot) private _clients;
    // Claimed amount plus one, set to 1 at registration: the first claim then rewrites a non-zero
    // slot (5,000 gas) instead of filling an empty one (20,000); 0 means "never registered". The
    // registration index shares the slot: registration writes it anyway and claims keep it.
    struct Ledger {
        uint32 registrationIndex;
        uint224 claimedPlusOne; // claims are capped at uint128, so this never overflows
    }

    mapping(address client => Ledger) private _ledger;
    mapping(address client => bytes32) private _commitmentOf;
    mapping(bytes32 commitment => address) private _ownerOf;

    /// @param token The reward token.
    /// @param admin Receives the admin role (round parameters, roles, pause, bans).
    /// @param oracle Receives the oracle role (finalization); may be the zero address to grant later.
    /// @param initialModelCid Binary CIDv1 of the initial global adapter that round 1 trains from.
    /// @param roundDuration Seconds each round's commit phase lasts at most; not zero.
    /// @param revealDuration Seconds the reveal window lasts after the commit phase; not zero.
    /// @param rewardPerRound Most reward tokens the oracle may allocate in one round.
    /// @param cohortSize Clients sampled per round from round 1 on; 0 lets every registered client
    ///        train (see `setCohortSize`).
    /// @param admission Who may register and the bond it locks (`IClientAdmission`); fixed for good.
    constructor(
        IERC20 token,
        address admin,
        address oracle,
        bytes memory initialModelCid,
        uint32 roundDuration,
        uint32 revealDuration,
        uint128 rewardPerRound,
        uint32 cohortSize,
        AdmissionRules memory admission
    ) ClientAdmission(admission, admin) {
        if (roundDuration == 0) revert CoordinatorInvalidRoundDuration(roundDuration);
        if (revealDuration == 0) revert CoordinatorInvalidRevealDuration(revealDuration);
        (uint8 codec, bytes32 digest) = _splitCid(initialModelCid);
        rewardToken = token;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (oracle != address(0)) _grantRole(ORACLE_ROLE, oracle);
        _rounds[0].slot.globalCodec = codec;
        _rounds[0].globalDigest = digest;
        _rounds[0].slot.finalizedAt = uint40(block.timestamp);
        _pending = PendingParameters(roundDuration, revealDuration, rewardPerRound, cohortSize, 0);
        emit RoundParametersUpdated(roundDuration, revealDuration, rewardPerRound, 1);
        if (cohortSize != 0) emit CohortSizeUpdated(cohortSize, 1);
        _openRound(1);
    }

    // --- clients ------------------------------------------------------------------------------

    /// @notice Join as a client with the digest of your dataset manifest.
    /// @dev Stores `keccak256(abi.encode(msg.sender, manifestDigest))`, so a copy of this
    ///      transaction's argument sent first from another address registers another value and
    ///      cannot block the sender.
    ///      On an `allowlist` deployment only an admitted address may register; with a
    ///      registration bond the caller must have approved it (it is locked until a clean exit).
    /// @param manifestDigest Hash of the canonical manifest of the client's data; not zero.
    function register(bytes32 manifestDigest) external whenNotPaused {
        if (manifestDigest == bytes32(0)) revert CoordinatorInvalidCommitment();
        ClientSlot storage client = _clients[msg.sender];
        if (client.status != ClientStatus.None) revert CoordinatorAlreadyRegistered(msg.sender);
        bytes32 bound = boundCommitment(msg.sender, manifestDigest);
        address owner = _ownerOf[bound];
        if (owner != address(0)) revert CoordinatorCommitmentTaken(bound, owner);
        client.status = ClientStatus.Active;
        _commitmentOf[msg.sender] = bound;
        uint32 index = _pending.registeredClients;
        _pending.registeredClients = index + 1;
        _ledger[msg.sender] = Ledger(index, 1);
        _ownerOf[bound] = msg.sender;
        _config.activeClients += 1;
        emit ClientRegistered(msg.sender, bound, _config.currentRound);
        _admit(msg.sender, rewardToken);
    }

    /// @notice Leave the federation: you stop counting as active at once (an unrevealed commitment
    ///         of the open round stops counting as pending) and may withdraw your bond after the
    ///         deployment's exit delay, unless the admin bans you before. Rewards stay claimable.
    function requestExit() external whenNotPaused {
        ClientSlot storage client = _clients[msg.sender];
        _requireActive(client.status, msg.sender);
        client.status = ClientStatus.Exited;
        _leaveActiveSet(client);
        _startExit(msg.sender);
    }

    /// @notice Take your registration bond back once the exit delay after `requestExit` passed.
    function withdrawBond() external whenNotPaused {
        if (_clients[msg.sender].status != ClientStatus.Exited) revert CoordinatorNotExited(msg.sender);
        _returnBond(msg.sender, rewardToken);
    }

    /// @dev Reverts unless `status` lets a client commit, reveal or exit.
    function _requireActive(ClientStatus status, address client) private view {
        if (status == ClientStatus.Active) return;
        if (status == ClientStatus.None) revert CoordinatorNotRegistered(client);
        if (status == ClientStatus.Banned) revert CoordinatorClientBanned(client);
        revert CoordinatorClientExited(client, _releaseTime(client));
    }

    /// @notice Commit to your update for the open round; reveal it with `revealUpdate` once the
    ///         commit phase closed. In a sampled round only the cohort's members may commit.
    /// @param round Must equal the open round, so a late transaction cannot land in the next one.
    /// @param commitment `computeCommitment(msg.sender, round, cid, numSamples, salt)`; not zero.
    function commitUpdate(uint256 round, bytes32 commitment) external whenNotPaused {
        Config memory config = _config;
        if (round != config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot storage slot = _rounds[round].slot;
        uint40 deadline = slot.deadline;
        if (block.timestamp >= deadline) revert CoordinatorRoundClosed(round, deadline);
        ClientSlot storage client = _clients[msg.sender];
        _requireActive(client.status, msg.sender);
        uint32 target = config.activeClients;
        if (slot.sampled) target = _requireCohortMember(round, msg.sender, target);
        if (commitment == bytes32(0)) revert CoordinatorInvalidCommitment();
        if (client.committedRound == round) revert CoordinatorAlreadyCommitted(msg.sender, round);
        client.committedRound = uint32(round);
        client.commitment = bytes20(commitment);
        uint32 pending = slot.pendingReveals + 1;
        slot.pendingReveals = pending;
        emit UpdateCommitted(round, msg.sender, commitment);
        if (pending >= target) _closeCommitPhase(slot, round);
    }

    /// @dev Reverts unless `client` is in the cohort of the sampled `round`; returns how many
    ///      commits close its commit phase: the cohort, or every active client if fewer remain.
    ///      A member banned before it committed can never commit, so with `size <= active` its
    ///      round runs to the deadline, as a silent member's does.
    function _requireCohortMember(uint256 round, address client, uint32 active) private view returns (uint32) {
        CohortSlot memory cohort = _rounds[round].cohort;
        if (!CohortSampling.isMember(cohort.seed, _ledger[client].registrationIndex, cohort.size, cohort.population)) {
            revert CoordinatorNotInCohort(client, round, cohort.size, cohort.population);
        }
        return cohort.size < active ? cohort.size : active;
    }

    /// @notice Reveal the update you committed to in the open round.
    /// @param round Must equal the open round.
    /// @param cid Binary CIDv1 (sha2-256) of the adapter file.
    /// @param numSamples Number of training examples the client used (self-reported; the oracle caps it).
    /// @param salt The 32 random bytes the commitment was made with.
    function revealUpdate(uint256 round, bytes calldata cid, uint64 numSamples, bytes32 salt)
        external
        whenNotPaused
    {
        Config memory config = _config;
        if (round != config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot storage slot = _rounds[round].slot;
        uint40 deadline = slot.deadline;
        if (block.timestamp < deadline) revert CoordinatorRevealNotOpen(round, deadline);
        uint64 closesAt = uint64(deadline) + config.revealDuration;
        if (block.timestamp >= closesAt) revert CoordinatorRevealClosed(round, closesAt);
        ClientSlot storage client = _clients[msg.sender];
        if (client.committedRound != round) revert CoordinatorNotCommitted(msg.sender, round);
        if (client.lastSubmittedRound == round) revert CoordinatorAlreadySubmitted(msg.sender, round);
        _requireActive(client.status, msg.sender);
        if (numSamples == 0) revert CoordinatorInvalidSampleCount(numSamples);
        _splitCid(cid);
        if (bytes20(computeCommitment(msg.sender, round, cid, numSamples, salt)) != client.commitment) {
            revert CoordinatorCommitmentMismatch(msg.sender, round);
        }
        client.lastSubmittedRound = uint32(round);
        client.submissions += 1;
        slot.submissions += 1;
        slot.pendingReveals -= 1;
        emit UpdateSubmitted(round, msg.sender, cid, numSamples);
    }

    /// @notice Claim every reward allocated to you so far; pays what was not claimed before.
    /// @param cumulativeAmount Your total allocation in the latest confirmed round's rewards tree.
    /// @param proof Merkle proof of the leaf (msg.sender, cumulativeAmount).
    function claim(uint256 cumulativeAmount, bytes32[] calldata proof) external whenNotPaused {
        Pool memory pool = _pool;
        bytes32 root = _rounds[_latestConfirmed(pool)].rewardsRoot;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) {
            revert CoordinatorInvalidProof(msg.sender, cumulativeAmount);
        }
        uint256 already = _claimedOf(msg.sender);
        if (cumulativeAmount <= already) revert CoordinatorNothingToClaim(msg.sender, cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        uint104 owed = pool.owed;
        // A tree that allocates more than the oracle declared can never pay out unallocated funds.
        if (amount > owed) revert CoordinatorClaimExceedsAllocation(amount, owed);
        _ledger[msg.sender].claimedPlusOne = uint224(SafeCast.toUint128(cumulativeAmount)) + 1;
        _pool.owed = owed - uint104(amount);
        emit RewardClaimed(msg.sender, amount, cumulativeAmount);
        rewardToken.safeTransfer(msg.sender, amount);
    }

    // --- oracle -------------------------------------------------------------------------------

    /// @notice Close the open round with its new global model and rewards, and open the next.
    ///         With a settlement set, only the settlement calls this (`FLBSettlement.propose`) and
    ///         the round's rewards become claimable once it confirms the round.
    /// @dev Due once the commit phase ended and either every pending commitment was revealed or
    ///      the reveal window closed.
    /// @param round The open round.
    /// @param submissionCount The number of reveals the oracle aggregated; must equal the round's
    ///        count, so a reveal that landed after the oracle read the round makes this revert.
    /// @param globalModelCid Binary CIDv1 of the aggregated global adapter.
    /// @param reportCid Binary CIDv1 of the round report (inputs, decisions, metrics, proofs).
    /// @param rewardsRoot Merkle root of every client's cumulative reward after this round.
    /// @param roundRewards Tokens newly allocated in this round (at most the round's budget).
    /// @param metricPpm Held-out accuracy of the new global model, in parts per million.
    /// @param epsilonMicros Cumulative privacy spent after this round (epsilon * 1e6; 0 without DP).
    function finalizeRound(
        uint256 round,
        uint32 submissionCount,
        bytes calldata globalModelCid,
        bytes calldata reportCid,
        bytes32 rewardsRoot,
        uint256 roundRewards,
        uint32 metricPpm,
        uint64 epsilonMicros
    ) external {
        // Once a settlement decides rounds a leftover oracle key cannot bypass it.
        _checkRole(_pool.settled ? SETTLEMENT_ROLE : ORACLE_ROLE);
        _allocate(round, submissionCount, roundRewards, metricPpm);
        _recordResult(round, globalModelCid, reportCid, rewardsRoot, metricPpm, epsilonMicros, block.timestamp);
        emit RoundFinalized(round, globalModelCid, reportCid, rewardsRoot, roundRewards, metricPpm, epsilonMicros);
        _openRound(round + 1);
    }

    /// @dev Checks that `round` may be finalized now with this count and budget, and books the
    ///      allocation.
    function _allocate(uint256 round, uint32 submissionCount, uint256 roundRewards, uint32 metricPpm) private {
        Config memory config = _config;
        if (round < config.currentRound) revert CoordinatorRoundAlreadyFinalized(round);
        if (round > config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot memory slot = _rounds[round].slot;
        uint64 revealDeadline = uint64(slot.deadline) + config.revealDuration;
        if (
            block.timestamp < slot.deadline || (slot.pendingReveals != 0 && block.timestamp < revealDeadline)
        ) {
            revert CoordinatorRoundNotDue(round, slot.deadline, revealDeadline, slot.pendingReveals);
        }
        if (submissionCount != slot.submissions) {
            revert CoordinatorSubmissionCountMismatch(round, submissionCount, slot.submissions);
        }
        if (roundRewards > config.rewardPerRound) {
            revert CoordinatorRewardsExceedBudget(roundRewards, config.rewardPerRound);
        }
        Pool memory pool = _pool;
        if (roundRewards > pool.unallocated) revert CoordinatorPoolUnderfunded(roundRewards, pool.unallocated);
        if (metricPpm > 1_000_000) revert CoordinatorMetricOutOfRange(metricPpm);
        pool.unallocated -= uint104(roundRewards);
        pool.owed += uint104(roundRewards);
        _pool = pool;
    }

    /// @dev Writes a round's result; the caller checked `metricPpm <= 1,000,000`.
    function _recordResult(
        uint256 round,
        bytes calldata globalModelCid,
        bytes calldata reportCid,
        bytes32 rewardsRoot,
        uint32 metricPpm,
        uint64 epsilonMicros,
        uint256 finalizedAt
    ) private {
        RoundRecord storage record = _rounds[round];
        RoundSlot memory slot = record.slot;
        (slot.globalCodec, record.globalDigest) = _splitCid(globalModelCid);
        (slot.reportCodec, record.reportDigest) = _splitCid(reportCid);
        slot.finalizedAt = uint40(finalizedAt);
        slot.metricPpm = uint24(metricPpm);
        slot.epsilonMicros = epsilonMicros;
        record.slot = slot;
        record.rewardsRoot = rewardsRoot;
    }

    // --- settlement ---------------------------------------------------------------------------

    /// @notice Hand round decisions to a settlement contract, once and for good: from now on only
    ///         it finalizes rounds, a finalized round pays claims once it confirms it, and it may
    ///         replace an unconfirmed round's result. Every round finalized before is confirmed.
    /// @param settlement_ The settlement contract; receives `SETTLEMENT_ROLE`.
    function setSettlement(address settlement_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        address current = _settlement;
        if (settlement_ == address(0) || current != address(0)) {
            revert CoordinatorInvalidSettlement(settlement_, current);
        }
        _settlement = settlement_;
        uint32 confirmed = _config.currentRound - 1;
        Pool memory pool = _pool;
        (pool.settled, pool.confirmedRound) = (true, confirmed);
        _pool = pool;
        _grantRole(SETTLEMENT_ROLE, settlement_);
        emit SettlementSet(settlement_, confirmed);
    }

    /// @notice Confirm the round after the latest confirmed one: claims pay its rewards root.
    /// @param round The latest confirmed round + 1; finalized already.
    function confirmRound(uint256 round) external onlyRole(SETTLEMENT_ROLE) {
        Pool memory pool = _requirePending(round, true);
        pool.confirmedRound = uint32(round);
        _pool = pool;
        emit RoundConfirmed(round, _rounds[round].rewardsRoot);
    }

    /// @notice Replace a finalized, unconfirmed round's result (a challenge proved it wrong, or it
    ///         was built on a replaced round). The pool moves by the difference in rewards, so the
    ///         books balance; the open round keeps training from the model it opened with.
    /// @param round A finalized round after the latest confirmed one.
    /// @param result The replacement: CIDs, rewards root, rewards (at most the open round's
    ///        budget), metric and privacy spent, as `finalizeRound` takes them.
    /// @param previousRewards The tokens the replaced result allocated (the settlement recorded them).
    function replaceRound(uint256 round, IFLBSettlement.RoundResult calldata result, uint256 previousRewards)
        external
        onlyRole(SETTLEMENT_ROLE)
    {
        _requirePending(round, false);
        _rebook(previousRewards, result.roundRewards, result.metricPpm);
        _recordResult(
            round,
            result.globalModelCid,
            result.reportCid,
            result.rewardsRoot,
            result.metricPpm,
            result.epsilonMicros,
            _rounds[round].slot.finalizedAt
        );
        emit RoundReplaced(round, result, previousRewards);
    }

    /// @dev Reverts unless `round` is finalized and not confirmed (with `next`: the next to confirm).
    function _requirePending(uint256 round, bool next) private view returns (Pool memory pool) {
        pool = _pool;
        uint256 confirmed = _latestConfirmed(pool);
        uint256 current = _config.currentRound;
        if (round <= confirmed || round >= current || (next && round != confirmed + 1)) {
            revert CoordinatorRoundNotPending(round, confirmed, current);
        }
    }

    /// @dev Moves the pool by a replacement's difference in rewards, within the open round's budget.
    function _rebook(uint256 previousRewards, uint256 roundRewards, uint32 metricPpm) private {
        uint128 budget = _config.rewardPerRound;
        if (roundRewards > budget) revert CoordinatorRewardsExceedBudget(roundRewards, budget);
        if (metricPpm > 1_000_000) revert CoordinatorMetricOutOfRange(metricPpm);
        Pool memory pool = _pool;
        if (roundRewards >= previousRewards) {
            uint256 increase = roundRewards - previousRewards;
            if (increase > pool.unallocated) revert CoordinatorPoolUnderfunded(increase, pool.unallocated);
            pool.unallocated -= uint104(increase);
            pool.owed += uint104(increase);
        } else {
            uint104 decrease = SafeCast.toUint104(previousRewards - roundRewards);
            pool.owed -= decrease;
            pool.unallocated += decrease;
        }
        _pool = pool;
    }

    function _latestConfirmed(Pool memory pool) private view returns (uint256) {
        return pool.settled ? pool.confirmedRound : _config.currentRound - 1;
    }

    /// @dev Opens `round` with the pending parameters; its commit phase lasts one round duration.
    ///      With a cohort size K and more than K registered clients it draws the round's cohort:
    ///      the seed is `keccak256(prevrandao, this contract, round)`, fixed in the block that opens
    ///      the round, after every client of the population registered. `prevrandao` (the beacon
    ///      chain's RANDAO mix) cannot be ground like a block hash, whose previous proposer picks
    ///      it freely by reordering transactions: the proposer of the block before can only bias
    ///      it by withholding that block (one bit per withheld slot, at the cost of its reward),
    ///      and the oracle, whose finalization opens the round, only by delaying it block by
    ///      block, in plain sight. Neither picks a cohort; each re-roll is a visible gap.
    function _openRound(uint256 round) private {
        PendingParameters memory next = _pending;
        Config memory config = _config;
        config.currentRound = SafeCast.toUint32(round);
        config.roundDuration = next.roundDuration;
        config.revealDuration = next.revealDuration;
        config.rewardPerRound = next.rewardPerRound;
        _config = config;
        uint40 deadline = uint40(block.timestamp + next.roundDuration);
        RoundRecord storage record = _rounds[round];
        record.slot.deadline = deadline;
        emit RoundOpened(round, deadline);
        if (next.cohortSize != 0 && next.cohortSize < next.registeredClients) _drawCohort(record, round, next);
    }

    function _drawCohort(RoundRecord storage record, uint256 round, PendingParameters memory next) private {
        record.slot.sampled = true;
        uint192 seed = uint192(uint256(keccak256(abi.encode(block.prevrandao, address(this), round))));
        record.cohort = CohortSlot(seed, next.cohortSize, next.registeredClients);
        emit CohortDrawn(round, bytes32(uint256(seed)), next.cohortSize, next.registeredClients);
    }

    /// @dev Ends the commit phase of the open round now: reveals open in this block.
    function _closeCommitPhase(RoundSlot storage slot, uint256 round) private {
        slot.deadline = uint40(block.timestamp);
        emit CommitPhaseClosed(round, uint64(block.timestamp));
    }

    // --- operator -----------------------------------------------------------------------------

    /// @notice Add reward tokens to the pool (needs an ERC-20 allowance); anyone may fund.
    /// @param amount Tokens to move from the caller into the pool.
    function fundRewards(uint256 amount) external {
        if (amount == 0) revert CoordinatorZeroAmount();
        _addToPool(msg.sender, amount);
        rewardToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Books `amount` tokens the contract holds (or is about to) as unallocated rewards.
    function _addToPool(address funder, uint256 amount) private {
        uint256 total = _totalFunded + amount;
        _totalFunded = total;
        _pool.unallocated += SafeCast.toUint104(amount);
        emit RewardsFunded(funder, amount, total);
    }

    /// @notice Set the durations and reward budget of the rounds opened from the next one on; the
    ///         open round keeps the parameters it opened with.
    /// @param roundDuration Seconds a round's commit phase lasts at most; not zero.
    /// @param revealDuration Seconds a round's reveal window lasts; not zero.
    /// @param rewardPerRound Most tokens the oracle may allocate in one round.
    function setRoundParameters(uint32 roundDuration, uint32 revealDuration, uint128 rewardPerRound)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (roundDuration == 0) revert CoordinatorInvalidRoundDuration(roundDuration);
        if (revealDuration == 0) revert CoordinatorInvalidRevealDuration(revealDuration);
        PendingParameters storage next = _pending;
        (next.roundDuration, next.revealDuration, next.rewardPerRound) = (roundDuration, revealDuration, rewardPerRound);
        emit RoundParametersUpdated(roundDuration, revealDuration, rewardPerRound, uint256(_config.currentRound) + 1);
    }

    /// @notice Set how many clients the rounds opened from the next one on sample; the open round
    ///         keeps its cohort. A round opening with at most that many registered clients samples
    ///         none: every registered client may train, as with 0.
    /// @param cohortSize Clients per round; 0 lets every registered client train.
    function setCohortSize(uint32 cohortSize) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pending.cohortSize = cohortSize;
        emit CohortSizeUpdated(cohortSize, uint256(_config.currentRound) + 1);
    }

    /// @notice Draw the open round's cohort now, from the clients registered so far: for a round
    ///         that opened with too few registered clients to sample (round 1 opens at deploy,
    ///         before anyone registered) and that nobody committed to yet.
    /// @dev The seed is the one `_openRound` would take in this block; the admin picks the block,
    ///      as the oracle's finalization picks it for the later rounds, and can draw once: the
    ///      round is sampled from then on. Reverts `CoordinatorCohortNotDrawable` otherwise.
    function drawCohort() external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 round = _config.currentRound;
        RoundRecord storage record = _rounds[round];
        RoundSlot memory slot = record.slot;
        PendingParameters memory next = _pending;
        if (
            slot.sampled || slot.pendingReveals != 0 || slot.submissions != 0 || next.cohortSize == 0
                || next.cohortSize >= next.registeredClients
        ) revert CoordinatorCohortNotDrawable(round, next.cohortSize, next.registeredClients);
        _drawCohort(record, round, next);
    }

    /// @notice Ban or unban a client: a banned client cannot commit or reveal and does not count
    ///         as active; its unrevealed commitment in the open round stops counting as pending.
    ///         A ban forfeits the client's registration bond to the reward pool, during its exit
    ///         delay too (what the delay is for); unbanning makes it active again without a bond.
    /// @param client The client's address.
    /// @param banned The new status.
    function setClientBanned(address client, bool banned) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ClientSlot storage slot = _clients[client];
        ClientStatus status = slot.status;
        if (status == ClientStatus.None) revert CoordinatorNotRegistered(client);
        if ((status == ClientStatus.Banned) == banned) return;
        slot.status = banned ? ClientStatus.Banned : ClientStatus.Active;
        emit ClientBanStatusChanged(client, banned);
        if (banned) {
            if (status == ClientStatus.Active) _leaveActiveSet(slot);
            uint128 forfeited = _forfeitBond(client);
            if (forfeited != 0) _addToPool(address(this), forfeited);
        } else {
            _config.activeClients += 1;
            uint256 round = _config.currentRound;
            if (slot.committedRound == round && slot.lastSubmittedRound != round) {
                _rounds[round].slot.pendingReveals += 1;
            }
        }
    }

    /// @dev `client` stopped being active (banned or exited): one active client less, its
    ///      unrevealed commitment of the open round no longer pending, and the commit phase closes
    ///      if everyone left (or the whole cohort) has committed.
    function _leaveActiveSet(ClientSlot storage client) private {
        uint32 active = _config.activeClients - 1;
        _config.activeClients = active;
        uint256 round = _config.currentRound;
        RoundSlot storage roundSlot = _rounds[round].slot;
        uint32 pending = roundSlot.pendingReveals;
        if (client.committedRound == round && client.lastSubmittedRound != round) {
            pending -= 1;
            roundSlot.pendingReveals = pending;
        }
        uint32 target = active;
        if (roundSlot.sampled && _rounds[round].cohort.size < target) target = _rounds[round].cohort.size;
        if (target > 0 && pending >= target && block.timestamp < roundSlot.deadline) {
            _closeCommitPhase(roundSlot, round);
        }
    }

    /// @notice Stop registrations, commits, reveals and claims.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resume registrations, commits, reveals and claims.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // --- views --------------------------------------------------------------------------------

    /// @inheritdoc IFLBCoordinator
    function computeCommitment(address client, uint256 round, bytes calldata cid, uint64 numSamples, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(client, round, cid, numSamples, salt));
    }

    /// @inheritdoc IFLBCoordinator
    function boundCommitment(address client, bytes32 manifestDigest) public pure returns (bytes32) {
        return keccak256(abi.encode(client, manifestDigest));
    }

    /// @inheritdoc IFLBCoordinator
    function currentRound() external view returns (uint256) {
        return _config.currentRound;
    }

    /// @notice The open round and the end of its commit phase (earlier than planned once every
    ///         active client, or the whole cohort, committed).
    function openRoundDeadline() external view returns (uint256 round, uint64 deadline) {
        round = _config.currentRound;
        deadline = _rounds[round].slot.deadline;
    }

    /// @notice Seconds the open round's commit phase lasts at most.
    function roundDuration() external view returns (uint256) {
        return _config.roundDuration;
    }

    /// @notice Seconds the open round's reveal window lasts.
    function revealDuration() external view returns (uint256) {
        return _config.revealDuration;
    }

    /// @notice Most tokens the oracle may allocate in the open round.
    function rewardPerRound() external view returns (uint256) {
        return _config.rewardPerRound;
    }

    /// @notice The parameters the next round will open with.
    function pendingRoundParameters()
        external
        view
        returns (uint256 roundDuration_, uint256 revealDuration_, uint256 rewardPerRound_)
    {
        PendingParameters memory next = _pending;
        return (next.roundDuration, next.revealDuration, next.rewardPerRound);
    }

    /// @notice Registered clients that are not banned and did not exit.
    function activeClients() external view returns (uint256) {
        return _config.activeClients;
    }

    /// @notice Clients that ever registered (banned ones included): the population the next
    ///         round's cohort is drawn from.
    function registeredClients() external view returns (uint256) {
        return _pending.registeredClients;
    }

    /// @notice The cohort size the next round will open with (0: every registered client).
    function pendingCohortSize() external view returns (uint256) {
        return _pending.cohortSize;
    }

    /// @inheritdoc IFLBCoordinator
    function isCohortMember(uint256 round, address client) external view returns (bool) {
        if (round == 0 || round > _config.currentRound) return false;
        if (_clients[client].status == ClientStatus.None) return false;
        RoundRecord storage record = _rounds[round];
        if (!record.slot.sampled) return true;
        CohortSlot memory cohort = record.cohort;
        return CohortSampling.isMember(cohort.seed, _ledger[client].registrationIndex, cohort.size, cohort.population);
    }

    /// @inheritdoc IFLBCoordinator
    function latestConfirmedRound() external view returns (uint256) {
        return _latestConfirmed(_pool);
    }

    /// @notice The settlement contract that decides rounds (zero while the oracle role does).
    function settlement() external view returns (address) {
        return _settlement;
    }

    /// @notice Pool accounting: tokens funded, allocated by finalized rounds, and paid out.
    function rewardTotals() external view returns (uint256 funded, uint256 allocated, uint256 claimed) {
        funded = _totalFunded;
        allocated = funded - _pool.unallocated;
        claimed = allocated - _pool.owed;
    }

    /// @notice The binary CIDv1 of the latest global model (the initial model before round 1 ends).
    function latestGlobalModelCid() external view returns (bytes memory) {
        RoundRecord storage record = _rounds[_config.currentRound - 1];
        return _joinCid(record.slot.globalCodec, record.globalDigest);
    }

    /// @notice Whether a client revealed an update in a round; exact for the open round and the
    ///         client's latest reveal (earlier ones are in the `UpdateSubmitted` events).
    function hasSubmitted(address client, uint256 round) external view returns (bool) {
        return _clients[client].lastSubmittedRound == round && round != 0;
    }

    /// @notice Whether a client committed in a round; exact for the open round and the client's
    ///         latest commitment (earlier ones are in the `UpdateCommitted` events).
    function hasCommitted(address client, uint256 round) external view returns (bool) {
        return _clients[client].committedRound == round && round != 0;
    }

    /// @inheritdoc IFLBCoordinator
    function roundInfo(uint256 round) external view returns (RoundView memory info) {
        RoundRecord storage record = _rounds[round];
        RoundSlot memory slot = record.slot;
        Config memory config = _config;
        info.round = round;
        info.deadline = slot.deadline;
        if (round == config.currentRound) info.revealDeadline = uint64(slot.deadline) + config.revealDuration;
        info.finalizedAt = slot.finalizedAt;
        info.submissions = slot.submissions;
        info.pendingReveals = slot.pendingReveals;
        info.metricPpm = slot.metricPpm;
        info.epsilonMicros = slot.epsilonMicros;
        info.rewardsRoot = record.rewardsRoot;
        info.confirmed = round <= _latestConfirmed(_pool);
        if (slot.globalCodec != 0) info.globalModelCid = _joinCid(slot.globalCodec, record.globalDigest);
        if (slot.reportCodec != 0) info.reportCid = _joinCid(slot.reportCodec, record.reportDigest);
        if (slot.sampled) {
            CohortSlot memory cohort = record.cohort;
            (info.cohortSeed, info.cohortSize, info.cohortPopulation) =
                (bytes32(uint256(cohort.seed)), cohort.size, cohort.population);
        }
    }

    /// @inheritdoc IFLBCoordinator
    function clientInfo(address client) external view returns (ClientView memory) {
        ClientSlot memory slot = _clients[client];
        return ClientView({
            registered: slot.status != ClientStatus.None,
            banned: slot.status == ClientStatus.Banned,
            lastSubmittedRound: slot.lastSubmittedRound,
            submissions: slot.submissions,
            claimed: uint128(_claimedOf(client)),
            datasetCommitment: _commitmentOf[client],
            committedRound: slot.committedRound,
            commitment: slot.commitment,
            registrationIndex: _ledger[client].registrationIndex,
            exited: slot.status == ClientStatus.Exited
        });
    }

    /// @notice The client that registered a (bound) dataset commitment (zero if none).
    function ownerOfCommitment(bytes32 datasetCommitment) external view returns (address) {
        return _ownerOf[datasetCommitment];
    }

    /// @inheritdoc IFLBCoordinator
    function scoreOf(address client) external view returns (uint256) {
        return _claimedOf(client);
    }

    function _claimedOf(address client) private view returns (uint256) {
        uint256 stored = _ledger[client].claimedPlusOne;
        return stored == 0 ? 0 : stored - 1;
    }

    // --- CIDs ---------------------------------------------------------------------------------

    /// @dev Accepts binary CIDv1 with a sha2-256 multihash and the raw (0x55) or dag-pb (0x70) codec.
    function _splitCid(bytes memory cid) private pure returns (uint8 codec, bytes32 digest) {
        if (
            cid.length != 36 || cid[0] != 0x01 || (cid[1] != 0x55 && cid[1] != 0x70) || cid[2] != 0x12
                || cid[3] != 0x20
        ) revert CoordinatorInvalidCid(cid);
        codec = uint8(cid[1]);
        assembly ("memory-safe") {
            digest := mload(add(cid, 36))
        }
    }

    function _joinCid(uint8 codec, bytes32 digest) private pure returns (bytes memory) {
        return abi.encodePacked(bytes1(0x01), bytes1(codec), bytes2(0x1220), digest);
    }
}
