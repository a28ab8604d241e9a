// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IFLBSettlement, IFLBSettledCoordinator} from "./interfaces/IFLBSettlement.sol";

/// @title FLBSettlement
/// @notice Optimistic settlement of FLB rounds. A bonded finalizer proposes each round's result;
///         the coordinator records it and opens the next round at once (training never waits),
///         but claims pay only confirmed rounds. A proposal becomes final after its challenge
///         window with no challenge, or as soon as `quorum` bonded verifiers attest its hash.
///         Anyone may challenge it within the window with another result and a bond; verifiers
///         then vote, and the side that reaches the quorum first wins: the losing side (the
///         proposer and the verifiers who attested it, or the challenger and the verifiers who
///         voted for it) loses its whole bond, `slashShareBps` of it to the winner and the rest to
///         the coordinator's reward pool; a winning challenge replaces the round's result.
/// @dev Rounds become final in order. Each proposal's hash commits to its parent's (the previous
///      round's result hash), so replacing round N makes every later proposal stale in O(1): a
///      stale proposal can only be proposed again (the finalizer recomputes it on the replaced
///      chain), which replaces its result on the coordinator, restarts its window and cancels
///      its open challenge (the challenger is refunded: nobody was proven wrong). A challenge no
///      quorum decides within `resolutionPeriod` stays open (a late quorum still decides it) and
///      the admin may decide it (`resolveStalled`): it fails safe, the round stays unfinal until
///      then. Verifiers are admitted by the admin (`VERIFIER_ROLE`): with open registration k
///      Sybil bonds would decide any round. Each holds one of 64 indices, so the votes of a
///      proposal are two 64-bit bitmaps in one slot with its rewards, and slashing the losing
///      voters loops over at most 64 bits. Nobody leaves with a bond that a pending round could
///      still slash: a withdrawal waits for the exit delay and for every round its holder
///      proposed or voted in to be final.
contract FLBSettlement is IFLBSettlement, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice May propose round results (with a bond of at least `minFinalizerBond`).
    bytes32 public constant FINALIZER_ROLE = keccak256("FINALIZER_ROLE");
    /// @notice May register as a verifier (with a bond of at least `minVerifierBond`).
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");
    /// @notice `challenge` part bit: the global model CID differs.
    uint8 public constant PART_GLOBAL_MODEL = 1;
    /// @notice `challenge` part bit: the report CID differs.
    uint8 public constant PART_REPORT = 2;
    /// @notice `challenge` part bit: the rewards root or the round's rewards differ.
    uint8 public constant PART_REWARDS = 4;
    /// @notice `challenge` part bit: the metric or the privacy spent differ.
    uint8 public constant PART_METRICS = 8;
    /// @notice Most verifiers registered at once (one bit each in a 64-bit vote bitmap).
    uint256 public constant MAX_VERIFIERS = 64;

    uint8 private constant ALL_PARTS = 15;
    uint256 private constant BPS = 10_000;

    /// @notice The coordinator whose rounds this contract settles.
    IFLBSettledCoordinator public immutable coordinator;
    /// @notice The coordinator's reward token: bonds are held, and slashed into the pool, in it.
    IERC20 public immutable rewardToken;

    enum Status {
        None,
        Proposed,
        Decided, // a quorum or the admin decided it; final once its parent is
        Final
    }

    // Slot 0 is what `attest` and `finalize` read first; the votes share a slot with the rewards,
    // which a re-proposal or a replacement needs.
    struct Proposal {
        address proposer;
        uint40 windowEnd;
        Status status;
        bytes32 resultHash;
        bytes32 parentHash;
        uint128 roundRewards;
        uint64 attesters; // bit i: the verifier with index i attested `resultHash`
        uint64 challengeVoters; // bit i: it voted for the open challenge's hash
    }

    struct Challenge {
        address challenger;
        uint40 resolveBy;
        uint8 parts;
        bool open;
        uint128 bond;
        bytes32 resultHash;
        RoundResult alternative;
    }

    struct Bond {
        uint128 amount;
        uint32 lockedUntilRound;
        uint40 exitAvailableAt; // 0: not leaving
        uint8 verifierIndexPlusOne; // 0: not a verifier
    }

    struct Cursor {
        uint32 firstRound; // the first round this settlement proposed; 0 before any
        uint32 finalRound; // the latest final round
        uint64 verifierSlots; // bit i: verifier index i is taken
    }

    Parameters private _parameters;
    Cursor private _cursor;
    mapping(address account => Bond) private _bonds;
    address[64] private _verifierAt;
    mapping(uint256 round => Proposal) private _proposals;
    mapping(uint256 round => Challenge) private _challenges;
    mapping(uint256 round => bytes32) private _noiseCommitments;

    /// @param coordinator_ The coordinator; its admin must then call `setSettlement(this)`.
    /// @param admin Receives the admin role (parameters, finalizer and verifier roles, stalled challenges).
    /// @param parameters_ The initial rules (see `Parameters`).
    constructor(IFLBSettledCoordinator coordinator_, address admin, Parameters memory parameters_) {
        coordinator = coordinator_;
        rewardToken = IERC20(coordinator_.rewardToken());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setParameters(parameters_);
    }

    // --- bonds --------------------------------------------------------------------------------

    /// @notice Add `amount` reward tokens to your bond (needs an ERC-20 allowance).
    /// @param amount Tokens to move from the caller; not zero.
    function depositBond(uint256 amount) external nonReentrant {
        _deposit(_bonds[msg.sender], amount);
    }

    /// @notice Join the verifier set, adding `amount` to your bond; the bond must then reach
    ///         `minVerifierBond`.
    /// @param amount Tokens to move from the caller (0 when the bond already suffices).
    function registerVerifier(uint256 amount) external onlyRole(VERIFIER_ROLE) nonReentrant {
        Bond storage bond = _bonds[msg.sender];
        if (bond.verifierIndexPlusOne != 0) revert SettlementAlreadyVerifier(msg.sender);
        if (bond.exitAvailableAt != 0) revert SettlementExiting(msg.sender);
        uint256 minimum = _parameters.minVerifierBond;
        if (bond.amount + amount < minimum) revert SettlementBondTooLow(msg.sender, bond.amount + amount, minimum);
        uint256 slots = _cursor.verifierSlots;
        uint256 free = ~slots & (slots + 1); // the lowest clear bit; bit 64 when all are taken
        uint256 index = Math.log2(free);
        if (index >= MAX_VERIFIERS) revert SettlementVerifierSetFull(MAX_VERIFIERS);
        _cursor.verifierSlots = uint64(slots | free);
        bond.verifierIndexPlusOne = uint8(index + 1);
        _verifierAt[index] = msg.sender;
        emit VerifierRegistered(msg.sender, uint8(index));
        if (amount != 0) _deposit(bond, amount);
    }

    /// @notice Ask to leave: from now on you cannot propose, attest or deposit; `withdrawBond`
    ///         pays you after the exit delay, once every round you proposed or voted in is final.
    function requestExit() external {
        Bond storage bond = _bonds[msg.sender];
        if (bond.exitAvailableAt != 0) revert SettlementExiting(msg.sender);
        uint40 availableAt = uint40(block.timestamp + _parameters.exitDelay);
        bond.exitAvailableAt = availableAt;
        emit ExitRequested(msg.sender, availableAt);
    }

    /// @notice Withdraw your whole bond and leave (the verifier set too).
    function withdrawBond() external nonReentrant {
        Bond memory bond = _bonds[msg.sender];
        if (bond.exitAvailableAt == 0) revert SettlementExitNotRequested(msg.sender);
        if (block.timestamp < bond.exitAvailableAt) {
            revert SettlementExitDelayRunning(msg.sender, bond.exitAvailableAt);
        }
        Cursor memory cursor = _cursor;
        if (bond.lockedUntilRound > cursor.finalRound) {
            revert SettlementBondLocked(msg.sender, bond.lockedUntilRound, cursor.finalRound);
        }
        if (bond.verifierIndexPlusOne != 0) {
            uint256 index = bond.verifierIndexPlusOne - 1;
            _cursor.verifierSlots = cursor.verifierSlots & ~uint64(1 << index);
            delete _verifierAt[index];
        }
        delete _bonds[msg.sender];
        emit BondWithdrawn(msg.sender, bond.amount);
        if (bond.amount != 0) rewardToken.safeTransfer(msg.sender, bond.amount);
    }

    // --- rounds -------------------------------------------------------------------------------

    /// @notice Commit to the secret of the open round's server-side DP noise before its commit
    ///         phase ends: the noise is then drawn from that secret mixed with the hash of the
    ///         first block at or after the deadline, which nobody knew when committing, so the
    ///         finalizer cannot choose its noise. The secret stays private (it would let anyone
    ///         subtract the noise); the report names the commitment and the block.
    /// @param round The coordinator's open round.
    /// @param commitment `keccak256` of the round's secret; not zero; once per round.
    function commitNoise(uint256 round, bytes32 commitment) external onlyRole(FINALIZER_ROLE) {
        if (commitment == bytes32(0)) revert SettlementInvalidNoiseCommitment();
        (uint256 open, uint64 deadline) = coordinator.openRoundDeadline();
        if (round != open || block.timestamp >= deadline) revert SettlementNoiseCommitClosed(round, open, deadline);
        bytes32 existing = _noiseCommitments[round];
        if (existing != bytes32(0)) revert SettlementNoiseAlreadyCommitted(round, existing);
        _noiseCommitments[round] = commitment;
        emit NoiseCommitted(round, msg.sender, commitment);
    }

    /// @notice Propose the open round's result (the coordinator finalizes it and opens the next
    ///         round), or propose a stale round's result again (the coordinator replaces it).
    /// @param round The open round, or a round whose proposal is stale.
    /// @param submissionCount The reveals aggregated; checked by the coordinator for the open
    ///        round (the count of a finalized round cannot change, so a re-proposal ignores it).
    /// @param result The round's result.
    function propose(uint256 round, uint32 submissionCount, RoundResult calldata result)
        external
        onlyRole(FINALIZER_ROLE)
        nonReentrant
    {
        Parameters memory params = _parameters;
        Bond storage bond = _bonds[msg.sender];
        _requireBond(bond, params.minFinalizerBond);
        Cursor memory cursor = _cursor;
        if (cursor.firstRound == 0 && round != 0) {
            (cursor.firstRound, cursor.finalRound) = (uint32(round), uint32(round - 1));
            _cursor = cursor;
        }
        if (round < cursor.firstRound || round == 0) revert SettlementAlreadyProposed(round);
        Proposal storage proposal = _proposals[round];
        bytes32 parentHash = _parentHash(round, cursor);
        bool first = proposal.status == Status.None;
        if (!first && proposal.parentHash == parentHash) revert SettlementAlreadyProposed(round);
        uint128 previousRewards = proposal.roundRewards;
        bytes32 hash = resultHashOf(round, parentHash, result);
        uint40 windowEnd = uint40(block.timestamp + params.challengeWindow);
        _proposals[round] = Proposal(
            msg.sender, windowEnd, Status.Proposed, hash, parentHash, SafeCast.toUint128(result.roundRewards), 0, 0
        );
        if (bond.lockedUntilRound < round) bond.lockedUntilRound = uint32(round);
        emit RoundProposed(round, msg.sender, hash, parentHash, windowEnd);
        if (first) {
            _forwardFinalization(round, submissionCount, result);
        } else {
            _cancelChallenge(round);
            coordinator.replaceRound(round, result, previousRewards);
        }
    }

    /// @notice Attest a round's result: the proposal's hash, or, while a challenge is open, the
    ///         challenge's (a vote for it). The result that reaches the quorum decides the round.
    /// @param round A proposed round that is not decided.
    /// @param resultHash The hash you computed (`resultHashOf`).
    function attest(uint256 round, bytes32 resultHash) external nonReentrant {
        Bond storage bond = _bonds[msg.sender];
        uint256 indexPlusOne = bond.verifierIndexPlusOne;
        if (indexPlusOne == 0 || !hasRole(VERIFIER_ROLE, msg.sender)) revert SettlementNotVerifier(msg.sender);
        Parameters memory params = _parameters;
        _requireBond(bond, params.minVerifierBond);
        Proposal storage proposal = _liveProposal(round);
        if (proposal.status != Status.Proposed) revert SettlementRoundDecided(round);
        if (proposal.proposer == msg.sender) revert SettlementProposerCannotAttest(round, msg.sender);
        uint64 bit = uint64(1 << (indexPlusOne - 1));
        if ((proposal.attesters | proposal.challengeVoters) & bit != 0) {
            revert SettlementAlreadyAttested(round, msg.sender);
        }
        Challenge storage pending = _challenges[round];
        bool challengeOpen = pending.open;
        bool forChallenge = challengeOpen && resultHash == pending.resultHash;
        uint256 votes;
        if (resultHash == proposal.resultHash) {
            votes = _popcount(proposal.attesters |= bit);
        } else if (forChallenge) {
            votes = _popcount(proposal.challengeVoters |= bit);
        } else {
            revert SettlementUnknownResult(round, resultHash, proposal.resultHash);
        }
        if (bond.lockedUntilRound < round) bond.lockedUntilRound = uint32(round);
        emit ResultAttested(round, msg.sender, resultHash, votes);
        if (votes < params.quorum) return;
        if (challengeOpen) {
            _resolve(round, forChallenge, false, params.slashShareBps);
        } else {
            proposal.status = Status.Decided;
            emit RoundDecided(round, resultHash);
        }
        if (round == uint256(_cursor.finalRound) + 1) _settle(round);
    }

    /// @notice Dispute a round's proposal with another result, posting `challengeBond` (needs an
    ///         ERC-20 allowance). Verifiers then vote with `attest`.
    /// @param round A proposed round within its challenge window, not decided, without an open challenge.
    /// @param alternative The result you computed instead.
    /// @param parts The PART_* bits of what differs (informative: verifiers judge the whole result).
    function challenge(uint256 round, RoundResult calldata alternative, uint8 parts) external nonReentrant {
        Proposal storage proposal = _liveProposal(round);
        if (proposal.status != Status.Proposed) revert SettlementRoundDecided(round);
        uint40 windowEnd = proposal.windowEnd;
        if (block.timestamp >= windowEnd) revert SettlementChallengeWindowClosed(round, windowEnd);
        Challenge storage record = _challenges[round];
        if (record.open) revert SettlementChallengeOpen(round);
        bytes32 hash = resultHashOf(round, proposal.parentHash, alternative);
        if (parts == 0 || parts > ALL_PARTS || hash == proposal.resultHash) {
            revert SettlementNothingChallenged(round, hash, parts);
        }
        uint8 invalid = _invalidParts(alternative);
        if (invalid != 0) revert SettlementInvalidAlternative(round, invalid);
        uint128 bond = _parameters.challengeBond;
        uint40 resolveBy = uint40(block.timestamp + _parameters.resolutionPeriod);
        (record.challenger, record.resolveBy, record.parts, record.open) = (msg.sender, resolveBy, parts, true);
        (record.bond, record.resultHash) = (bond, hash);
        record.alternative = alternative;
        emit RoundChallenged(round, msg.sender, hash, parts, bond, resolveBy, alternative);
        rewardToken.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @notice Make the next round final: its window passed without a challenge, or a quorum
    ///         decided it while an earlier round was not final yet. Anyone may call it.
    /// @param round The round after the latest final one.
    function finalize(uint256 round) external nonReentrant {
        Cursor memory cursor = _cursor;
        if (round <= cursor.finalRound && cursor.firstRound != 0) revert SettlementAlreadyFinal(round);
        Proposal storage proposal = _proposals[round];
        if (proposal.status == Status.None) revert SettlementRoundNotProposed(round);
        if (round != uint256(cursor.finalRound) + 1) revert SettlementRoundsOutOfOrder(round, cursor.finalRound + 1);
        _liveProposal(round);
        if (_challenges[round].open) revert SettlementChallengeOpen(round);
        if (proposal.status != Status.Decided && block.timestamp < proposal.windowEnd) {
            revert SettlementChallengeWindowOpen(round, proposal.windowEnd);
        }
        _settle(round);
    }

    /// @notice Decide a challenge no quorum decided within its resolution period.
    /// @param round A round with an open challenge past its `resolveBy`.
    /// @param challengerWins Whether the challenge's result replaces the proposal's.
    function resolveStalled(uint256 round, bool challengerWins) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        _liveProposal(round);
        Challenge storage record = _challenges[round];
        if (!record.open) revert SettlementNoOpenChallenge(round);
        if (block.timestamp < record.resolveBy) revert SettlementResolutionPending(round, record.resolveBy);
        _resolve(round, challengerWins, true, _parameters.slashShareBps);
        if (round == uint256(_cursor.finalRound) + 1) _settle(round);
    }

    /// @notice Change the rules; a proposal keeps the window it was made with, a challenge the
    ///         bond and resolution period it was opened with.
    /// @param parameters_ The new rules.
    function setParameters(Parameters calldata parameters_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParameters(parameters_);
    }

    // --- internals ----------------------------------------------------------------------------

    function _setParameters(Parameters memory p) private {
        if (
            p.minFinalizerBond == 0 || p.minVerifierBond == 0 || p.challengeBond == 0 || p.challengeWindow == 0
                || p.resolutionPeriod == 0 || p.quorum == 0 || p.quorum > MAX_VERIFIERS || p.slashShareBps > BPS
        ) revert SettlementInvalidParameters();
        _parameters = p;
        emit ParametersUpdated(p);
    }

    function _deposit(Bond storage bond, uint256 amount) private {
        if (amount == 0) revert SettlementZeroAmount();
        if (bond.exitAvailableAt != 0) revert SettlementExiting(msg.sender);
        uint128 total = bond.amount + SafeCast.toUint128(amount);
        bond.amount = total;
        emit BondDeposited(msg.sender, amount, total);
        rewardToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Reverts unless the caller's bond is active and at least `minimum`.
    function _requireBond(Bond storage bond, uint256 minimum) private view {
        if (bond.exitAvailableAt != 0) revert SettlementExiting(msg.sender);
        if (bond.amount < minimum) revert SettlementBondTooLow(msg.sender, bond.amount, minimum);
    }

    /// @dev The proposal of `round`; reverts when there is none or it is stale.
    function _liveProposal(uint256 round) private view returns (Proposal storage proposal) {
        proposal = _proposals[round];
        if (proposal.status == Status.None) revert SettlementRoundNotProposed(round);
        if (proposal.status == Status.Final) return proposal;
        bytes32 current = _parentHash(round, _cursor);
        if (proposal.parentHash != current) revert SettlementStaleProposal(round, proposal.parentHash, current);
    }

    function _parentHash(uint256 round, Cursor memory cursor) private view returns (bytes32) {
        return round == cursor.firstRound ? bytes32(0) : _proposals[round - 1].resultHash;
    }

    function _forwardFinalization(uint256 round, uint32 submissionCount, RoundResult calldata result) private {
        coordinator.finalizeRound(
            round,
            submissionCount,
            result.globalModelCid,
            result.reportCid,
            result.rewardsRoot,
            result.roundRewards,
            result.metricPpm,
            result.epsilonMicros
        );
    }

    /// @dev Ends `round`'s open challenge without a decision and refunds its challenger.
    function _cancelChallenge(uint256 round) private {
        Challenge storage record = _challenges[round];
        if (!record.open) return;
        record.open = false;
        emit ChallengeCancelled(round, record.challenger, record.bond);
        rewardToken.safeTransfer(record.challenger, record.bond);
    }

    /// @dev Decides `round`'s open challenge: slashes the losing side, pays the winner its share
    ///      (and a winning challenger its bond back), funds the pool with the rest, and replaces
    ///      the round's result when the challenger won. The round is decided afterwards.
    function _resolve(uint256 round, bool challengerWon, bool byAdmin, uint256 shareBps) private {
        Proposal storage proposal = _proposals[round];
        Challenge storage record = _challenges[round];
        record.open = false;
        proposal.status = Status.Decided;
        uint256 slashed;
        uint256 previousRewards = proposal.roundRewards;
        if (challengerWon) {
            slashed = _slash(proposal.proposer, round);
            slashed += _slashVoters(proposal.attesters, round);
            proposal.resultHash = record.resultHash;
            proposal.roundRewards = SafeCast.toUint128(record.alternative.roundRewards);
        } else {
            slashed = record.bond;
            emit BondSlashed(record.challenger, round, slashed);
            slashed += _slashVoters(proposal.challengeVoters, round);
        }
        // Rounding goes to the pool: the share and the pool's part add up to `slashed` exactly.
        uint256 share = slashed * shareBps / BPS;
        emit ChallengeResolved(round, challengerWon, proposal.resultHash, slashed, share, slashed - share, byAdmin);
        if (slashed != share) {
            rewardToken.forceApprove(address(coordinator), slashed - share);
            coordinator.fundRewards(slashed - share);
        }
        if (challengerWon) {
            coordinator.replaceRound(round, record.alternative, previousRewards);
            share += record.bond;
        }
        if (share != 0) rewardToken.safeTransfer(challengerWon ? record.challenger : proposal.proposer, share);
    }

    /// @dev Slashes the whole bond of every verifier whose bit is set; returns the total.
    function _slashVoters(uint64 voters, uint256 round) private returns (uint256 total) {
        while (voters != 0) {
            uint64 lowest = voters & (~voters + 1);
            voters ^= lowest;
            total += _slash(_verifierAt[Math.log2(lowest)], round);
        }
    }

    function _slash(address account, uint256 round) private returns (uint256 amount) {
        Bond storage bond = _bonds[account];
        amount = bond.amount;
        if (amount == 0) return 0;
        bond.amount = 0;
        emit BondSlashed(account, round, amount);
    }

    /// @dev Makes `round` (decided or past its window, not stale, the next in order) final.
    function _settle(uint256 round) private {
        Proposal storage proposal = _proposals[round];
        proposal.status = Status.Final;
        _cursor.finalRound = uint32(round);
        emit RoundSettled(round, proposal.resultHash);
        coordinator.confirmRound(round);
    }

    /// @dev PART_* bits of the fields the coordinator would refuse in a replacement.
    function _invalidParts(RoundResult calldata result) private view returns (uint8 invalid) {
        if (!_isCid(result.globalModelCid)) invalid |= PART_GLOBAL_MODEL;
        if (!_isCid(result.reportCid)) invalid |= PART_REPORT;
        if (result.roundRewards > coordinator.rewardPerRound()) invalid |= PART_REWARDS;
        if (result.metricPpm > 1_000_000) invalid |= PART_METRICS;
    }

    /// @dev The coordinator's CID rule: a 36-byte CIDv1, raw or dag-pb, sha2-256.
    function _isCid(bytes calldata cid) private pure returns (bool) {
        return cid.length == 36 && cid[0] == 0x01 && (cid[1] == 0x55 || cid[1] == 0x70) && cid[2] == 0x12
            && cid[3] == 0x20;
    }

    function _popcount(uint64 x) private pure returns (uint256 count) {
        while (x != 0) {
            x &= x - 1;
            ++count;
        }
    }

    // --- views --------------------------------------------------------------------------------

    /// @inheritdoc IFLBSettlement
    function resultHashOf(uint256 round, bytes32 parentHash, RoundResult calldata result)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(round, parentHash, result));
    }

    /// @inheritdoc IFLBSettlement
    function noiseCommitment(uint256 round) external view returns (bytes32) {
        return _noiseCommitments[round];
    }

    /// @inheritdoc IFLBSettlement
    function finalRound() external view returns (uint256) {
        return _cursor.finalRound;
    }

    /// @notice The first round this settlement proposed (0 before any).
    function firstRound() external view returns (uint256) {
        return _cursor.firstRound;
    }

    /// @inheritdoc IFLBSettlement
    function parameters() external view returns (Parameters memory) {
        return _parameters;
    }

    /// @inheritdoc IFLBSettlement
    function proposalInfo(uint256 round) external view returns (ProposalView memory info) {
        Proposal memory proposal = _proposals[round];
        if (proposal.status == Status.None) return info;
        info.proposer = proposal.proposer;
        info.windowEnd = proposal.windowEnd;
        info.decided = proposal.status >= Status.Decided;
        info.isFinal = proposal.status == Status.Final;
        info.stale = !info.isFinal && proposal.parentHash != _parentHash(round, _cursor);
        info.resultHash = proposal.resultHash;
        info.parentHash = proposal.parentHash;
        info.roundRewards = proposal.roundRewards;
        info.attestations = _popcount(proposal.attesters);
        info.challengeVotes = _popcount(proposal.challengeVoters);
    }

    /// @inheritdoc IFLBSettlement
    function challengeInfo(uint256 round) external view returns (ChallengeView memory) {
        Challenge storage record = _challenges[round];
        return ChallengeView(
            record.challenger, record.open, record.parts, record.resolveBy, record.bond, record.resultHash
        );
    }

    /// @notice The alternative result of `round`'s open (or last) challenge.
    function challengeResult(uint256 round) external view returns (RoundResult memory) {
        return _challenges[round].alternative;
    }

    /// @inheritdoc IFLBSettlement
    function bondInfo(address account) external view returns (BondView memory) {
        Bond memory bond = _bonds[account];
        bool verifier = bond.verifierIndexPlusOne != 0;
        return BondView(
            bond.amount,
            bond.lockedUntilRound,
            bond.exitAvailableAt,
            verifier,
            verifier ? bond.verifierIndexPlusOne - 1 : 0
        );
    }

    /// @notice The verifier holding vote bit `index` (zero if free).
    function verifierAt(uint256 index) external view returns (address) {
        return _verifierAt[index];
    }

    /// @notice Registered verifiers (bonded or slashed, not withdrawn).
    function verifierCount() external view returns (uint256) {
        return _popcount(_cursor.verifierSlots);
    }
}
