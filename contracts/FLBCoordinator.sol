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
/// @notice Drives federated LoRA fine-tuning rounds: registration, one update per client per
///         round, oracle finalization with the new global model, and cumulative Merkle rewards.
/// @dev Storage is packed so that a submission touches two warm slots and a finalization costs
///      the same for 1 or 1,000 clients: per-client rewards live in the Merkle tree, not here.
///      CIDs are kept as (codec, sha2-256 digest); the views rebuild the binary CIDv1.
contract FLBCoordinator is IFLBCoordinator, AccessControl, Pausable {
    using SafeERC20 for IERC20;

    /// @notice May finalize rounds.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    /// @notice The ERC-20 token rewards are paid in.
    IERC20 public immutable rewardToken;

    // One slot: the parameters and counters every transaction reads.
    struct Config {
        uint64 currentRound;
        uint32 activeClients;
        uint32 roundDuration;
        uint128 rewardPerRound;
    }

    // One slot per round for the fields that change; the digests are written once at finalize.
    struct RoundSlot {
        uint40 deadline;
        uint40 finalizedAt;
        uint32 submissions;
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

    // One slot per client: a submission or a claim updates it in place.
    struct ClientSlot {
        bool registered;
        bool banned;
        uint64 lastSubmittedRound;
        uint32 submissions;
        uint128 claimed;
    }

    // The two balances that finalize and claim must check share one slot that funding makes
    // non-zero, so neither transaction ever pays to fill an empty slot (20,000 gas).
    struct Pool {
        uint128 unallocated; // funded, not yet allocated to any round
        uint128 owed; // allocated, not yet claimed
    }

    Config private _config;
    Pool private _pool;
    uint256 private _totalFunded;
    mapping(uint256 round => RoundRecord) private _rounds;
    mapping(address client => ClientSlot) private _clients;
    mapping(address client => bytes32) private _commitmentOf;
    mapping(bytes32 commitment => address) private _ownerOf;

    /// @param token The reward token.
    /// @param admin Receives the admin role (round parameters, roles, pause, bans).
    /// @param oracle Receives the oracle role (finalization); may be the zero address to grant later.
    /// @param initialModelCid Binary CIDv1 of the initial global adapter that round 1 trains from.
    /// @param roundDuration Seconds each round stays open for submissions.
    /// @param rewardPerRound Most reward tokens the oracle may allocate in one round.
    constructor(
        IERC20 token,
        address admin,
        address oracle,
        bytes memory initialModelCid,
        uint32 roundDuration,
        uint128 rewardPerRound
    ) {
        if (roundDuration == 0) revert CoordinatorInvalidRoundDuration(roundDuration);
        (uint8 codec, bytes32 digest) = _splitCid(initialModelCid);
        rewardToken = token;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (oracle != address(0)) _grantRole(ORACLE_ROLE, oracle);
        _rounds[0].slot.globalCodec = codec;
        _rounds[0].globalDigest = digest;
        _rounds[0].slot.finalizedAt = uint40(block.timestamp);
        _config = Config({
            currentRound: 0,
            activeClients: 0,
            roundDuration: roundDuration,
            rewardPerRound: rewardPerRound
        });
        emit RoundParametersUpdated(roundDuration, rewardPerRound);
        _openRound(1);
    }

    // --- clients ------------------------------------------------------------------------------

    /// @notice Join as a client with the hash of your dataset manifest.
    /// @param datasetCommitment Hash of the canonical manifest of the client's data; unique.
    function register(bytes32 datasetCommitment) external whenNotPaused {
        if (datasetCommitment == bytes32(0)) revert CoordinatorInvalidCommitment();
        ClientSlot storage client = _clients[msg.sender];
        if (client.registered) revert CoordinatorAlreadyRegistered(msg.sender);
        address owner = _ownerOf[datasetCommitment];
        if (owner != address(0)) revert CoordinatorCommitmentTaken(datasetCommitment, owner);
        client.registered = true;
        _commitmentOf[msg.sender] = datasetCommitment;
        _ownerOf[datasetCommitment] = msg.sender;
        _config.activeClients += 1;
        emit ClientRegistered(msg.sender, datasetCommitment, _config.currentRound);
    }

    /// @notice Publish your update for the open round.
    /// @param round Must equal the open round, so a late transaction cannot land in the next one.
    /// @param cid Binary CIDv1 (sha2-256) of the adapter file.
    /// @param numSamples Number of training examples the client used (self-reported; the oracle caps it).
    function submitUpdate(uint256 round, bytes calldata cid, uint64 numSamples) external whenNotPaused {
        Config memory config = _config;
        if (round != config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot storage slot = _rounds[round].slot;
        uint40 deadline = slot.deadline;
        if (block.timestamp >= deadline) revert CoordinatorRoundClosed(round, deadline);
        ClientSlot storage client = _clients[msg.sender];
        if (!client.registered) revert CoordinatorNotRegistered(msg.sender);
        if (client.banned) revert CoordinatorClientBanned(msg.sender);
        if (client.lastSubmittedRound == round) revert CoordinatorAlreadySubmitted(msg.sender, round);
        if (numSamples == 0) revert CoordinatorInvalidSampleCount(numSamples);
        _splitCid(cid);
        client.lastSubmittedRound = uint64(round);
        client.submissions += 1;
        slot.submissions += 1;
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
        ClientSlot storage client = _clients[msg.sender];
        uint256 already = client.claimed;
        if (cumulativeAmount <= already) revert CoordinatorNothingToClaim(msg.sender, cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        uint128 owed = _pool.owed;
        // A tree that allocates more than the oracle declared can never pay out unallocated funds.
        if (amount > owed) revert CoordinatorClaimExceedsAllocation(amount, owed);
        client.claimed = uint128(cumulativeAmount);
        _pool.owed = owed - uint128(amount);
        emit RewardClaimed(msg.sender, amount, cumulativeAmount);
        rewardToken.safeTransfer(msg.sender, amount);
    }

    // --- oracle -------------------------------------------------------------------------------

    /// @notice Close the open round with its new global model and rewards, and open the next.
    /// @dev Due once the deadline passed, or as soon as every active client submitted.
    /// @param round The open round.
    /// @param globalModelCid Binary CIDv1 of the aggregated global adapter.
    /// @param reportCid Binary CIDv1 of the round report (inputs, decisions, metrics, proofs).
    /// @param rewardsRoot Merkle root of every client's cumulative reward after this round.
    /// @param roundRewards Tokens newly allocated in this round (at most the round's budget).
    /// @param metricPpm Held-out accuracy of the new global model, in parts per million.
    /// @param epsilonMicros Cumulative privacy spent after this round (epsilon * 1e6; 0 without DP).
    function finalizeRound(
        uint256 round,
        bytes calldata globalModelCid,
        bytes calldata reportCid,
        bytes32 rewardsRoot,
        uint256 roundRewards,
        uint32 metricPpm,
        uint64 epsilonMicros
    ) external onlyRole(ORACLE_ROLE) {
        _allocate(round, roundRewards, metricPpm);
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

    /// @dev Checks that `round` may be finalized now with this budget, and books the allocation.
    function _allocate(uint256 round, uint256 roundRewards, uint32 metricPpm) private {
        Config memory config = _config;
        if (round < config.currentRound) revert CoordinatorRoundAlreadyFinalized(round);
        if (round > config.currentRound) revert CoordinatorWrongRound(round, config.currentRound);
        RoundSlot memory slot = _rounds[round].slot;
        bool everyoneSubmitted = config.activeClients > 0 && slot.submissions >= config.activeClients;
        if (block.timestamp < slot.deadline && !everyoneSubmitted) {
            revert CoordinatorRoundNotDue(round, slot.deadline, slot.submissions, config.activeClients);
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

    /// @dev Opens `round` with a deadline one round duration from now.
    function _openRound(uint256 round) private {
        uint40 deadline = uint40(block.timestamp + _config.roundDuration);
        _rounds[round].slot.deadline = deadline;
        _config.currentRound = uint64(round);
        emit RoundOpened(round, deadline);
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

    /// @notice Change the duration and reward budget of rounds opened from now on.
    /// @param roundDuration Seconds a round stays open; not zero.
    /// @param rewardPerRound Most tokens the oracle may allocate in one round.
    function setRoundParameters(uint32 roundDuration, uint128 rewardPerRound)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (roundDuration == 0) revert CoordinatorInvalidRoundDuration(roundDuration);
        _config.roundDuration = roundDuration;
        _config.rewardPerRound = rewardPerRound;
        emit RoundParametersUpdated(roundDuration, rewardPerRound);
    }

    /// @notice Ban or unban a client: a banned client cannot submit and does not count as active.
    /// @param client The client's address.
    /// @param banned The new status.
    function setClientBanned(address client, bool banned) external onlyRole(DEFAULT_ADMIN_ROLE) {
        ClientSlot storage slot = _clients[client];
        if (!slot.registered) revert CoordinatorNotRegistered(client);
        if (slot.banned == banned) return;
        slot.banned = banned;
        if (banned) _config.activeClients -= 1;
        else _config.activeClients += 1;
        emit ClientBanStatusChanged(client, banned);
    }

    /// @notice Stop registrations, submissions and claims.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resume registrations, submissions and claims.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // --- views --------------------------------------------------------------------------------

    /// @inheritdoc IFLBCoordinator
    function currentRound() external view returns (uint256) {
        return _config.currentRound;
    }

    /// @notice Seconds each new round stays open.
    function roundDuration() external view returns (uint256) {
        return _config.roundDuration;
    }

    /// @notice Most tokens the oracle may allocate per round.
    function rewardPerRound() external view returns (uint256) {
        return _config.rewardPerRound;
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

    /// @notice Whether a client submitted in a round; exact for the open round and the client's
    ///         latest submission (earlier submissions are in the `UpdateSubmitted` events).
    function hasSubmitted(address client, uint256 round) external view returns (bool) {
        return _clients[client].lastSubmittedRound == round && round != 0;
    }

    /// @inheritdoc IFLBCoordinator
    function roundInfo(uint256 round) external view returns (RoundView memory info) {
        RoundRecord storage record = _rounds[round];
        RoundSlot memory slot = record.slot;
        info.round = round;
        info.deadline = slot.deadline;
        info.finalizedAt = slot.finalizedAt;
        info.submissions = slot.submissions;
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
            registered: slot.registered,
            banned: slot.banned,
            lastSubmittedRound: slot.lastSubmittedRound,
            submissions: slot.submissions,
            claimed: slot.claimed,
            datasetCommitment: _commitmentOf[client]
        });
    }

    /// @notice The client that registered a dataset commitment (zero if none).
    function ownerOfCommitment(bytes32 datasetCommitment) external view returns (address) {
        return _ownerOf[datasetCommitment];
    }

    /// @inheritdoc IFLBCoordinator
    function scoreOf(address client) external view returns (uint256) {
        return _clients[client].claimed;
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
