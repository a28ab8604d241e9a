// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IClientAdmission
/// @notice Who may register with the coordinator, and what it costs: the deployment fixes the
///         rules once. `allowlist` deployments (a consortium) register only the addresses a
///         registrar admitted; `open` ones let anyone register. Either may ask a registration
///         bond in the reward token, so that every Sybil identity locks real value: it is
///         returned `exitDelay` seconds after the client asked to leave, unless the admin banned
///         the client first, which forfeits the bond to the reward pool.
interface IClientAdmission {
    /// @notice The deployment's admission rules (immutable).
    struct AdmissionRules {
        bool allowlist; // true: only admitted addresses may register
        uint128 registrationBond; // reward tokens locked at registration; 0: free
        uint32 exitDelay; // seconds between `requestExit` and `withdrawBond`
    }

    /// @notice A registrar admitted (or revoked the admission of) `client`.
    event ClientAdmitted(address indexed client, bool admitted);
    /// @notice `client` locked its registration bond.
    event BondLocked(address indexed client, uint256 amount);
    /// @notice `client` left the active clients; its bond (if any) is released at `releasedAt`.
    event ExitRequested(address indexed client, uint64 releasedAt);
    /// @notice `client` took its bond back after a clean exit.
    event BondReturned(address indexed client, uint256 amount);
    /// @notice A ban forfeited `client`'s bond to the reward pool.
    event BondForfeited(address indexed client, uint256 amount);

    /// @notice Raised by `setAdmitted` on an `open` deployment, where admission means nothing.
    error CoordinatorAdmissionOpen();
    /// @notice Raised by `register` on an `allowlist` deployment for an address no registrar admitted.
    /// @param client The caller.
    error CoordinatorNotAdmitted(address client);
    /// @notice Raised by `commitUpdate`, `revealUpdate` and `requestExit` once the caller asked to exit.
    /// @param client The caller.
    /// @param releasedAt When its bond is (or was) released (unix seconds).
    error CoordinatorClientExited(address client, uint64 releasedAt);
    /// @notice Raised by `withdrawBond` when the caller did not ask to exit (or is banned).
    /// @param client The caller.
    error CoordinatorNotExited(address client);
    /// @notice Raised by `withdrawBond` before the exit delay has passed.
    /// @param client The caller.
    /// @param releasedAt When the bond is released (unix seconds).
    error CoordinatorBondLocked(address client, uint64 releasedAt);
    /// @notice Raised by `withdrawBond` when the caller holds no bond (none was asked, it was
    ///         returned already, or a ban forfeited it).
    /// @param client The caller.
    error CoordinatorNoBond(address client);

    /// @notice The deployment's admission rules.
    function admissionRules() external view returns (AdmissionRules memory);
    /// @notice Whether a registrar admitted `client` (always true on an `open` deployment).
    function isAdmitted(address client) external view returns (bool);
    /// @notice The bond `client` holds and when it is released (0 until it asks to exit).
    function bondOf(address client) external view returns (uint256 amount, uint64 releasedAt);
    /// @notice Registration bonds locked in the coordinator now (not part of the reward pool).
    function bondsHeld() external view returns (uint256);
}
