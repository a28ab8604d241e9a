"""One settings object for every FLB program, read from a YAML file and ``FLB_`` variables.

Precedence: explicit overrides > environment (``FLB_NETWORK``, ``FLB_ORACLE__INTERVAL_S`` ...) >
the YAML file (``flb.yaml``, or the path in ``FLB_CONFIG``) > defaults. Secrets are never values
here: accounts are Ape aliases, passwords come from files or named environment variables, and a
value that looks like a raw private key or a placeholder token is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from flb_dapp.exceptions import ConfigError
from flb_dapp.rounds.settings import RoundRules
from flb_dapp.taskspec import TaskSpec

DEFAULT_CONFIG = "flb.yaml"
PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "token", "password", "xxx", "todo", "placeholder"}


def refuse_private_key(value: Any, where: str) -> None:
    if isinstance(value, str) and PRIVATE_KEY.match(value.strip()):
        raise ConfigError(
            f"{where} looks like a raw private key; never put keys in configuration: "
            "import it with `flb account import` and name the account instead"
        )


def check_secret(value: str | None, name: str) -> str:
    """A usable secret (bearer token): set, not a placeholder, at least 16 characters."""
    if value is None or value.strip().lower() in PLACEHOLDERS or len(value.strip()) < 16:
        raise ConfigError(f"{name} is unset or a placeholder; set it to a random string of 16+ characters")
    return value


class OracleConfig(RoundRules):
    """The oracle's section: the round rules (their defaults are owned by ``RoundRules``) and the
    service's own settings."""

    @model_validator(mode="before")
    @classmethod
    def _no_seed_values(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("seed", "dp_seed"):
                if key in data:
                    raise ConfigError(
                        f"oracle.{key} in configuration would publish the DP noise seed (anyone could "
                        "subtract the noise); put it in a file named by oracle.dp_seed_file or an "
                        "environment variable named by oracle.dp_seed_env"
                    )
        return data

    interval_s: float = 15.0
    journal: str = ".flb/oracle.sqlite"
    # The secret seed of server-side DP noise, from a file or an environment variable, never from
    # this file: anyone who knows it can subtract the noise. Unset: OS entropy.
    dp_seed_file: str | None = None
    dp_seed_env: str | None = None
    pause_after_failures: int = 2  # the same step failing this many times in a row pauses the oracle
    control_host: str = "127.0.0.1"
    control_port: int | None = None
    control_token_env: str = "FLB_ORACLE_TOKEN"
    # gRPC upload service, for clients without an IPFS node. Plaintext only on a loopback
    # upload_host; elsewhere set upload_tls_cert and upload_tls_key (PEM files). The service reads
    # the chain every upload_refresh_s in its own thread: a new registration or round is seen after
    # at most that long. Each upload must finish within upload_deadline_s and keep an average of
    # upload_min_rate bytes/s; at most upload_max_streams run at once.
    upload_port: int | None = None
    upload_host: str = "127.0.0.1"
    upload_tls_cert: str | None = None
    upload_tls_key: str | None = None
    upload_deadline_s: float = 60.0
    upload_min_rate: int = 16 << 10
    upload_max_streams: int = 16
    upload_refresh_s: float = 5.0
    device: str = "cpu"
    torch_threads: int | None = None  # None: torch's default; 1 is much faster for tiny models


class ApiConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = ".flb/api.sqlite"
    cors_origins: list[str] = Field(default_factory=list)
    operator_token_env: str = "FLB_API_TOKEN"
    oracle_control_url: str | None = None
    max_page_size: int = 100
    max_download_bytes: int = 512 << 20
    max_concurrent_downloads: int = 4
    poll_interval_s: float = 2.0
    response_cache_entries: int = 1024


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by FLB_CONFIG (default flb.yaml), if it exists."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path} must hold a mapping of settings")
        return data


class FLBSettings(BaseSettings):
    """Everything the `flb` CLI, the oracle and the API read."""

    model_config = SettingsConfigDict(env_prefix="FLB_", env_nested_delimiter="__", extra="forbid")

    network: str = "ethereum:local:test"
    deployment: str = "deployments/31337.json"
    store: str = ".flb/store"
    upload_grpc: str | None = None
    upload_tls_ca: str | None = None  # PEM CA (or self-signed cert) to trust for the gRPC upload
    cache_dir: str = ".flb/cache"
    account: str | None = None
    password_file: str | None = None
    password_env: str = "FLB_PASSWORD"
    data: str | None = None  # the client's local training data (file or folder)
    task: TaskSpec = Field(default_factory=TaskSpec)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)

    _config_path: Path | None = None

    @model_validator(mode="after")
    def _no_secrets(self) -> FLBSettings:
        for name in ("account", "password_file", "password_env", "network", "store"):
            refuse_private_key(getattr(self, name), name)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("FLB_CONFIG", DEFAULT_CONFIG)).expanduser()
        return (init_settings, env_settings, _YamlSource(settings_cls, path))


def load_settings(path: str | Path | None = None, **overrides: Any) -> FLBSettings:
    """Settings from ``path`` (or FLB_CONFIG / flb.yaml), the environment and ``overrides``."""
    if path is not None and not Path(path).expanduser().is_file():
        # NOTE: a named file that is not there is a mistake (a relative path from the wrong folder),
        # never a reason to fall back to the defaults and talk to another chain.
        raise ConfigError(f"no configuration file at {path} (from {Path.cwd()})")
    previous = os.environ.get("FLB_CONFIG")
    if path is not None:
        os.environ["FLB_CONFIG"] = str(path)
    try:
        return FLBSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    finally:
        if path is not None:
            if previous is None:
                os.environ.pop("FLB_CONFIG", None)
            else:
                os.environ["FLB_CONFIG"] = previous


def settings_sources(settings: FLBSettings, path: str | Path | None = None) -> dict[str, str]:
    """Where each top-level value came from: 'env', 'file' or 'default' (for `flb config show`)."""
    config_path = Path(path or os.environ.get("FLB_CONFIG", DEFAULT_CONFIG))
    file_data: dict[str, Any] = {}
    if config_path.is_file():
        file_data = yaml.safe_load(config_path.read_text()) or {}
    sources = {}
    for name in FLBSettings.model_fields:
        if any(key.startswith(f"FLB_{name.upper()}") for key in os.environ):
            sources[name] = "env"
        elif name in file_data:
            sources[name] = f"file ({config_path})"
        else:
            sources[name] = "default"
    return sources
