"""Every error FLB raises on purpose, under one base class.

Leaves also subclass the matching builtin (ValueError, RuntimeError, ...) so callers that do not
know FLB still catch them sensibly. Messages say what went wrong and what to do about it.
"""

from __future__ import annotations


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


class AdapterMismatchError(TrainingError, ValueError):
    """An adapter's tensors or LoRA settings do not fit the model or the training configuration."""


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


class RoundError(FLBError, RuntimeError):
    """The round computation could not complete."""


class WalletError(FLBError, PermissionError):
    """An account could not be created, found or unlocked."""


# --- client data and the CLI ----------------------------------------------------------------------
class DataNotFoundError(FLBError, FileNotFoundError):
    """The client's local data (a file or a folder of files) is not where it was said to be."""

    exit_code = 2
