// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IFLBCoordinator} from "./interfaces/IFLBCoordinator.sol";

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
contract FLBCoordinator is IFLBCoordinator, AccessControl, Pausable {
    using SafeERC20 for IERC20;

    /// @notice May finalize rounds.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

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

    // One slot: the parameters the next round opens with (the admin's latest choice).
    struct PendingParameters {
        uint32 roundDuration;
        uint32 revealDuration;
        uint128 rewardPerRound;
    }

    // One slot per round for the fields that change; the digests are written once at finalize.
    struct RoundSlot {
        uint40 deadline; // end of the commit phase
        uint40 finalizedAt;
        uint32 submissions; // reveals
        uint32 pendingReveals; // commits of non-banned clients not revealed yet
        uint32 metricPpm;
        uint64 epsilonMicros;
        uint8 globalCodec;
        uint8 reportCodec;
    }

    struct RoundRecord {
        RoundSlot slot;
        bytes32 globalDigest;
        bytes32 reportDigest;
        bytes32 rewardsRoot;
    }

    enum ClientStatus {
        None,
        Active,
        Banned
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
    // non-zero, so neither transaction ever pays to fill an empty slot (20,000 gas).
    struct Pool {
        uint128 unallocated; // funded, not yet allocated to any round
        uint128 owed; // allocated, not yet claimed
    }

    Config private _config;
    PendingParameters private _pending;
    Pool private _pool;
    uint256 private _totalFunded;
    mapping(uint256 round => RoundRecord) private _rounds;
    mapping(address client => ClientSlot) private _clients;
    // Claimed amount plus one, set to 1 at registration: the first claim then rewrites a non-zero
    // slot (5,000 gas) instead of filling an empty one (20,000); 0 means "never registered".
    mapping(address client => uint256) private _claimedPlusOne;
    mapping(address client => bytes32) private _commitmentOf;
    mapping(bytes32 commitment => address) private _ownerOf;

    /// @param token The reward token.
    /// @param admin Receives the admin role (round parameters, roles, pause, bans).
    /// @param oracle Receives the oracle role (finalization); may be the zero address to grant later.
    /// @param initialModelCid Binary CIDv1 of the initial global adapter that round 1 trains from.
    /// @param roundDuration Seconds each round's commit phase lasts at most; not zero.
    /// @param revealDuration Seconds the reveal window lasts after the commit phase; not zero.
    /// @param rewardPerRound Most reward tokens the oracle may allocate in one round.
    constructor(
        IERC20 token,
        address admin,
        address oracle,
        bytes memory initialModelCid,
        uint32 roundDuration,
        uint32 revealDuration,
        uint128 rewardPerRound
    ) {
        if (roundDuration == 0) revert CoordinatorInvalidRoundDuration(roundDuration);
        if (revealDuration == 0) revert CoordinatorInvalidRevealDuration(revealDuration);
        (uint8 codec, bytes32 digest) = _splitCid(initialModelCid);
        rewardToken = token;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (oracle != address(0)) _grantRole(ORACLE_ROLE, oracle);
        _rounds[0].slot.globalCodec = codec;
        _rounds[0].globalDigest = digest;
        _rounds[0].slot.finalizedAt = uint40(block.timestamp);
        _pending = PendingParameters(roundDuration, revealDuration, rewardPerRound);
        emit RoundParametersUpdated(roundDuration, revealDuration, rewardPerRound, 1);
        _openRound(1);
    }

    // --- clients ------------------------------------------------------------------------------

    /// @notice Join as a client with the digest of your dataset manifest.
    /// @dev Stores `keccak256(abi.encode(msg.sender, manifestDigest))`, so a copy of this
    ///      transaction's argument sent first from another address registers another value and
    ///      cannot block the sender.
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
        _claimedPlusOne[msg.sender] = 1;
        _ownerOf[bound] = msg.sender;
        _config.activeClients += 1;
        emit ClientRegistered(msg.sender, bound, _config.currentRound);
    }

    /// @notice Commit to your update for the open round; reveal it with `revealUpdate` once the
    ///         commit phase closed.
    /// @param round Must equal the open round, so a late transaction cannot land in the next one.
    /// @param commitment `computeCommitment(msg.sender, round, cid, numSamples, salt)`; not zero.
    function commitUpdate(uint256 round, bytes32 commitment) external whenNotPaused {
        Config memory config = _config;
        if (round != config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot storage slot = _rounds[round].slot;
        uint40 deadline = slot.deadline;
        if (block.timestamp >= deadline) revert CoordinatorRoundClosed(round, deadline);
        ClientSlot storage client = _clients[msg.sender];
        ClientStatus status = client.status;
        if (status == ClientStatus.None) revert CoordinatorNotRegistered(msg.sender);
        if (status == ClientStatus.Banned) revert CoordinatorClientBanned(msg.sender);
        if (commitment == bytes32(0)) revert CoordinatorInvalidCommitment();
        if (client.committedRound == round) revert CoordinatorAlreadyCommitted(msg.sender, round);
        client.committedRound = uint32(round);
        client.commitment = bytes20(commitment);
        uint32 pending = slot.pendingReveals + 1;
        slot.pendingReveals = pending;
        emit UpdateCommitted(round, msg.sender, commitment);
        if (pending >= config.activeClients) _closeCommitPhase(slot, round);
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
        if (client.status == ClientStatus.Banned) revert CoordinatorClientBanned(msg.sender);
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
    /// @param cumulativeAmount Your total allocation in the latest finalized round's rewards tree.
    /// @param proof Merkle proof of the leaf (msg.sender, cumulativeAmount).
    function claim(uint256 cumulativeAmount, bytes32[] calldata proof) external whenNotPaused {
        bytes32 root = _rounds[_config.currentRound - 1].rewardsRoot;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) {
            revert CoordinatorInvalidProof(msg.sender, cumulativeAmount);
        }
        uint256 already = _claimedOf(msg.sender);
        if (cumulativeAmount <= already) revert CoordinatorNothingToClaim(msg.sender, cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        uint128 owed = _pool.owed;
        // A tree that allocates more than the oracle declared can never pay out unallocated funds.
        if (amount > owed) revert CoordinatorClaimExceedsAllocation(amount, owed);
        _claimedPlusOne[msg.sender] = uint256(SafeCast.toUint128(cumulativeAmount)) + 1;
        _pool.owed = owed - uint128(amount);
        emit RewardClaimed(msg.sender, amount, cumulativeAmount);
        rewardToken.safeTransfer(msg.sender, amount);
    }

    // --- oracle -------------------------------------------------------------------------------

    /// @notice Close the open round with its new global model and rewards, and open the next.
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
    ) external onlyRole(ORACLE_ROLE) {
        _allocate(round, submissionCount, roundRewards, metricPpm);
        RoundRecord storage record = _rounds[round];
        RoundSlot memory slot = record.slot;
        (slot.globalCodec, record.globalDigest) = _splitCid(globalModelCid);
        (slot.reportCodec, record.reportDigest) = _splitCid(reportCid);
        slot.finalizedAt = uint40(block.timestamp);
        slot.metricPpm = metricPpm;
        slot.epsilonMicros = epsilonMicros;
        record.slot = slot;
        record.rewardsRoot = rewardsRoot;
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
        pool.unallocated -= uint128(roundRewards);
        pool.owed += uint128(roundRewards);
        _pool = pool;
    }

    /// @dev Opens `round` with the pending parameters; its commit phase lasts one round duration.
    function _openRound(uint256 round) private {
        PendingParameters memory next = _pending;
        Config memory config = _config;
        config.currentRound = SafeCast.toUint32(round);
        config.roundDuration = next.roundDuration;
        config.revealDuration = next.revealDuration;
        config.rewardPerRound = next.rewardPerRound;
        _config = config;
        uint40 deadline = uint40(block.timestamp + next.roundDuration);
        _rounds[round].slot.deadline = deadline;
        emit RoundOpened(round, deadline);
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
        uint256 total = _totalFunded + amount;
        _totalFunded = total;
        _pool.unallocated += SafeCast.toUint128(amount);
        emit RewardsFunded(msg.sender, amount, total);
        rewardToken.safeTransferFrom(msg.sender, address(this), amount);
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
        _pending = PendingParameters(roundDuration, revealDuration, rewardPerRound);
        emit RoundParametersUpdated(roundDuration, revealDuration, rewardPerRound, uint256(_config.currentRound) + 1);
    }

    /// @notice Ban or unban a client: a banned client cannot commit or reveal and does not count
    ///         as active; its unrevealed commitment in the open round stops counting as pending.
    /// @param client The client's address.
    /// @param banned The new status.
    function setClientBanned(address client, bool banned) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ClientSlot storage slot = _clients[client];
        ClientStatus status = slot.status;
        if (status == ClientStatus.None) revert CoordinatorNotRegistered(client);
        if ((status == ClientStatus.Banned) == banned) return;
        slot.status = banned ? ClientStatus.Banned : ClientStatus.Active;
        Config memory config = _config;
        uint256 round = config.currentRound;
        RoundSlot storage roundSlot = _rounds[round].slot;
        bool pendingInOpenRound = slot.committedRound == round && slot.lastSubmittedRound != round;
        if (banned) {
            config.activeClients -= 1;
            _config.activeClients = config.activeClients;
            emit ClientBanStatusChanged(client, banned);
            uint32 pending = roundSlot.pendingReveals;
            if (pendingInOpenRound) {
                pending -= 1;
                roundSlot.pendingReveals = pending;
            }
            // Every client still active may have committed already: then nobody is left to wait for.
            if (
                config.activeClients > 0 && pending >= config.activeClients
                    && block.timestamp < roundSlot.deadline
            ) {
                _closeCommitPhase(roundSlot, round);
            }
        } else {
            _config.activeClients = config.activeClients + 1;
            if (pendingInOpenRound) roundSlot.pendingReveals += 1;
            emit ClientBanStatusChanged(client, banned);
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

    /// @notice Registered clients that are not banned.
    function activeClients() external view returns (uint256) {
        return _config.activeClients;
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
        if (slot.globalCodec != 0) info.globalModelCid = _joinCid(slot.globalCodec, record.globalDigest);
        if (slot.reportCodec != 0) info.reportCid = _joinCid(slot.reportCodec, record.reportDigest);
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
            commitment: slot.commitment
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
        uint256 stored = _claimedPlusOne[client];
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
