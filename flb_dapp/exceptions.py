"""Every error FLB raises on purpose, under one base class.

Leaves also subclass the matching builtin (ValueError, RuntimeError, ...) so callers that do not
know FLB still catch them sensibly. Messages say what went wrong and what to do about it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar


class FLBError(Exception):
    """Base class of every FLB error. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


# --- configuration -------------------------------------------------------------------------------
class ConfigError(FLBError, ValueError):
    """A configuration value is missing, malformed or unsafe."""

    exit_code = 2


# --- storage ---------------------------------------------------------------------------------------
class StorageError(FLBError, RuntimeError):
    """A store could not be read or written."""


class StoreUnavailableError(StorageError):
    """The store (IPFS node, gRPC upload service) cannot be reached."""


class ContentTimeoutError(StorageError, TimeoutError):
    """The store answered but the content did not arrive in full before the caller's deadline.

    Not an outage: a CID nobody serves, or a peer that sends a byte a minute, looks like this, so
    it is about the content and whoever published its CID.
    """


class ContentNotFoundError(StorageError, KeyError):
    """No content is stored under this CID."""

    def __str__(self) -> str:
        # NOTE: KeyError's own __str__ quotes its argument; users should see a plain message.
        return str(self.args[0]) if self.args else ""


class CidMismatchError(StorageError, ValueError):
    """The bytes do not hash to the CID they were fetched or announced under."""


class InvalidCidError(StorageError, ValueError):
    """A string or byte sequence is not a CID FLB accepts."""


class ContentTooLargeError(StorageError, ValueError):
    """Content exceeds the configured size limit."""


class UploadRefusedError(StorageError, PermissionError):
    """The gRPC upload service refused an upload (signature, registration, size)."""


class CarFormatError(StorageError, ValueError):
    """A CAR file is malformed or incomplete (bad header, truncated block, a block it needs is missing)."""


class UnsupportedLayoutError(StorageError, ValueError):
    """Verified content whose DAG was built with another layout than FLB's (chunk size, links, leaves)."""


# --- adapters --------------------------------------------------------------------------------------
class AdapterValidationError(FLBError, ValueError):
    """An adapter file is not a well-formed, safe FLB LoRA adapter."""


# --- learning ------------------------------------------------------------------------------------------
class TrainingError(FLBError, RuntimeError):
    """Local training could not run."""


class ModelLoadError(TrainingError):
    """A base model or tokenizer could not be loaded (path, hub id, GGUF file, quantization)."""


class AdapterMismatchError(TrainingError, AdapterValidationError):
    """An adapter's tensors or LoRA settings do not fit the model or the training configuration.

    Also an :class:`AdapterValidationError`: an adapter that does not fit the model it is loaded
    into is as unusable as a malformed one, so one ``except`` catches both.
    """


class BackendUnavailableError(TrainingError, ImportError):
    """An optional training backend (e.g. mlx-lm) is not installed on this machine."""


class AggregationError(FLBError, ValueError):
    """A strategy was misconfigured or given updates it cannot combine."""


class PrivacyBudgetExceededError(FLBError, RuntimeError):
    """Running another round would spend more privacy than the configured budget."""


class EvaluationError(FLBError, ValueError):
    """An evaluation data set is malformed or missing."""


class MalformedRecordError(EvaluationError):
    """One record of a data set breaks the schema; the message names the record."""


# --- chain -------------------------------------------------------------------------------------------
class ChainError(FLBError, RuntimeError):
    """The chain node failed or a transaction reverted."""


class ChainUnavailableError(ChainError):
    """The chain node cannot be reached."""


class DeploymentNotFoundError(ChainError, FileNotFoundError):
    """No deployment record exists for this network."""


class PreflightError(ChainError, ValueError):
    """A transaction would revert; it was not sent. The message says which rule it breaks."""


# --- the coordinator contract's custom errors, one class each ---------------------------------------
class ContractRuleError(PreflightError):
    """A rule of the coordinator contract is broken. Each subclass is named after the contract's
    custom error (``contracts/interfaces/IFLBCoordinator.sol``, OpenZeppelin's for pause and roles)
    and carries its arguments as attributes, the Solidity names in snake_case: addresses as
    checksummed ``str``, integers as ``int``, ``bytes32``/``bytes`` as ``bytes``.

    The SDK's pre-flight checks raise it before anything is sent; revert translation raises the
    same class when a transaction sent anyway reverted with that error (see
    :func:`flb_dapp.chain.reverts.translate_reverts`), so one ``except`` handles both.
    """

    arguments: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # NOTE: a subclass's annotations, in order, are the Solidity error's parameters.
        cls.arguments = tuple(inspect.get_annotations(cls))

    def __init__(self, message: str, **arguments: Any) -> None:
        if set(arguments) != set(self.arguments):
            raise TypeError(f"{type(self).__name__} takes {list(self.arguments)}, got {sorted(arguments)}")
        super().__init__(message)
        for name, value in arguments.items():
            setattr(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        # NOTE: Exception pickles as cls(*args), which would drop the keyword-only arguments.
        values = {name: getattr(self, name) for name in self.arguments}
        return (functools.partial(type(self), **values), self.args)


class EnforcedPause(ContractRuleError):
    """The coordinator is paused (OpenZeppelin ``Pausable``)."""


class AccessControlUnauthorizedAccount(ContractRuleError):
    """The account lacks the role the call needs (OpenZeppelin ``AccessControl``)."""

    account: str
    needed_role: bytes


class CoordinatorAlreadyRegistered(ContractRuleError):
    """The caller registered before (a banned client included)."""

    client: str


class CoordinatorCommitmentTaken(ContractRuleError):
    """The bound dataset commitment is already registered, by ``owner``."""

    dataset_commitment: bytes
    owner: str


class CoordinatorInvalidCommitment(ContractRuleError):
    """A zero manifest digest (register) or a zero update commitment (commit)."""


class CoordinatorNotRegistered(ContractRuleError):
    """The client never registered."""

    client: str


class CoordinatorClientBanned(ContractRuleError):
    """The client is banned from committing and revealing."""

    client: str


class CoordinatorWrongRound(ContractRuleError):
    """The round passed in is not the open one."""

    given: int
    current: int


class CoordinatorRoundClosed(ContractRuleError):
    """The open round's commit phase ended at ``deadline``."""

    round: int
    deadline: int


class CoordinatorNotInCohort(ContractRuleError):
    """The round samples a cohort of ``cohort_size`` from ``population`` and the client is not in it."""

    client: str
    round: int
    cohort_size: int
    population: int


class CoordinatorCohortNotDrawable(ContractRuleError):
    """``drawCohort``: the open round is sampled already or has a commitment, or the pending cohort
    size is 0 or at least the registered clients."""

    round: int
    cohort_size: int
    registered_clients: int


class CoordinatorAlreadyCommitted(ContractRuleError):
    """The client already committed in this round."""

    client: str
    round: int


class CoordinatorNotCommitted(ContractRuleError):
    """The client made no commitment in this round, so there is nothing to reveal."""

    client: str
    round: int


class CoordinatorRevealNotOpen(ContractRuleError):
    """The commit phase is still running; reveals open at ``opens_at``."""

    round: int
    opens_at: int


class CoordinatorRevealClosed(ContractRuleError):
    """The round's reveal window closed at ``closed_at``."""

    round: int
    closed_at: int


class CoordinatorCommitmentMismatch(ContractRuleError):
    """The reveal does not hash to the client's commitment for the round."""

    client: str
    round: int


class CoordinatorAlreadySubmitted(ContractRuleError):
    """The client already revealed (submitted) its update in this round."""

    client: str
    round: int


class CoordinatorInvalidSampleCount(ContractRuleError):
    """The update claims no training samples."""

    num_samples: int


class CoordinatorInvalidCid(ContractRuleError):
    """Not a 36-byte binary CIDv1 (raw or dag-pb codec, sha2-256)."""

    cid: bytes


class CoordinatorRoundAlreadyFinalized(ContractRuleError):
    """The round was finalized before."""

    round: int


class CoordinatorRoundNotDue(ContractRuleError):
    """The round may not be finalized yet: commits or reveals are still running."""

    round: int
    deadline: int
    reveal_deadline: int
    pending_reveals: int


class CoordinatorSubmissionCountMismatch(ContractRuleError):
    """The oracle's count of reveals (``given``) differs from the round's (``actual``)."""

    round: int
    given: int
    actual: int


class CoordinatorRewardsExceedBudget(ContractRuleError):
    """The round's rewards exceed its budget."""

    round_rewards: int
    reward_per_round: int


class CoordinatorPoolUnderfunded(ContractRuleError):
    """The pool holds fewer unallocated tokens than the round allocates."""

    round_rewards: int
    available: int


class CoordinatorMetricOutOfRange(ContractRuleError):
    """The metric exceeds 1,000,000 parts per million."""

    metric_ppm: int


class CoordinatorInvalidRoundDuration(ContractRuleError):
    """A zero round duration."""

    round_duration: int


class CoordinatorInvalidRevealDuration(ContractRuleError):
    """A zero reveal duration."""

    reveal_duration: int


class CoordinatorInvalidProof(ContractRuleError):
    """The Merkle proof does not lead to the latest finalized round's rewards root."""

    client: str
    cumulative_amount: int


class CoordinatorNothingToClaim(ContractRuleError):
    """The proven cumulative amount is not above what was already paid."""

    client: str
    cumulative_amount: int
    claimed: int


class CoordinatorClaimExceedsAllocation(ContractRuleError):
    """The claim would pay more than finalized rounds allocated and nobody claimed yet."""

    amount: int
    owed: int


class CoordinatorZeroAmount(ContractRuleError):
    """Funding with an amount of zero."""


class RoundError(FLBError, RuntimeError):
    """The round computation could not complete."""


class ReportError(FLBError, ValueError):
    """A round report is malformed or contradicts the chain."""


class WalletError(FLBError, PermissionError):
    """An account could not be created, found or unlocked."""


# --- client data and the CLI ----------------------------------------------------------------------
class DataNotFoundError(FLBError, FileNotFoundError):
    """The client's local data (a file or a folder of files) is not where it was said to be."""

    exit_code = 2


# --- local devnet ----------------------------------------------------------------------------------
class DevnetError(FLBError, RuntimeError):
    """The devnet (`flb devnet`) could not be started or stopped."""
