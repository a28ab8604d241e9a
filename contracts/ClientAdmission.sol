// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IClientAdmission} from "./interfaces/IClientAdmission.sol";

/// @title ClientAdmission
/// @notice The coordinator's admission rules and registration bonds (see `IClientAdmission`);
///         the coordinator decides when a client registers, exits or is banned and calls the
///         internal hooks here, which own the allowlist and the bonds' custody.
/// @dev A free `open` deployment reads only immutables at registration, so today's gas holds.
///      Bonds are kept apart from the reward pool: the coordinator's token balance is the pool's
///      unallocated and owed tokens plus `bondsHeld`.
abstract contract ClientAdmission is IClientAdmission, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May admit clients on an `allowlist` deployment (the admin holds it from the start
    ///         and grants it to registrars).
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    bool private immutable _allowlist;
    uint128 private immutable _registrationBond;
    uint32 private immutable _exitDelay;

    struct Bond {
        uint128 amount; // 0 once returned or forfeited
        uint64 releasedAt; // 0 until the client asks to exit
    }

    mapping(address client => bool) private _admitted;
    mapping(address client => Bond) private _bonds;
    uint256 private _bondsHeld;

    constructor(AdmissionRules memory rules, address admin) {
        (_allowlist, _registrationBond, _exitDelay) = (rules.allowlist, rules.registrationBond, rules.exitDelay);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    /// @notice Admit `client` (or revoke its admission) on an `allowlist` deployment. Admission is
    ///         read once, by `register`: to remove a registered client, ban it.
    function setAdmitted(address client, bool admitted) external onlyRole(REGISTRAR_ROLE) {
        if (!_allowlist) revert CoordinatorAdmissionOpen();
        if (_admitted[client] == admitted) return;
        _admitted[client] = admitted;
        emit ClientAdmitted(client, admitted);
    }

    /// @dev At registration: refuse an address nobody admitted, take the bond.
    function _admit(address client, IERC20 token) internal {
        if (_allowlist && !_admitted[client]) revert CoordinatorNotAdmitted(client);
        uint128 bond = _registrationBond;
        if (bond == 0) return;
        _bonds[client] = Bond(bond, 0);
        _bondsHeld += bond;
        emit BondLocked(client, bond);
        token.safeTransferFrom(client, address(this), bond);
    }

    /// @dev The client left the active set: start its exit delay.
    function _startExit(address client) internal {
        uint64 releasedAt = uint64(block.timestamp) + _exitDelay;
        _bonds[client].releasedAt = releasedAt;
        emit ExitRequested(client, releasedAt);
    }

    /// @dev Pay an exited client its bond back once the delay has passed.
    function _returnBond(address client, IERC20 token) internal {
        Bond memory bond = _bonds[client];
        if (bond.amount == 0) revert CoordinatorNoBond(client);
        if (block.timestamp < bond.releasedAt) revert CoordinatorBondLocked(client, bond.releasedAt);
        _bonds[client].amount = 0;
        _bondsHeld -= bond.amount;
        emit BondReturned(client, bond.amount);
        token.safeTransfer(client, bond.amount);
    }

    /// @dev A ban takes the client's bond (if it still holds one); the caller adds it to the pool.
    function _forfeitBond(address client) internal returns (uint128 amount) {
        amount = _bonds[client].amount;
        if (amount == 0) return 0;
        _bonds[client].amount = 0;
        _bondsHeld -= amount;
        emit BondForfeited(client, amount);
    }

    /// @dev When an exited client's bond is released.
    function _releaseTime(address client) internal view returns (uint64) {
        return _bonds[client].releasedAt;
    }

    /// @inheritdoc IClientAdmission
    function admissionRules() external view returns (AdmissionRules memory) {
        return AdmissionRules(_allowlist, _registrationBond, _exitDelay);
    }

    /// @inheritdoc IClientAdmission
    function isAdmitted(address client) external view returns (bool) {
        return !_allowlist || _admitted[client];
    }

    /// @inheritdoc IClientAdmission
    function bondOf(address client) external view returns (uint256 amount, uint64 releasedAt) {
        Bond memory bond = _bonds[client];
        return (bond.amount, bond.releasedAt);
    }

    /// @inheritdoc IClientAdmission
    function bondsHeld() external view returns (uint256) {
        return _bondsHeld;
    }
}
