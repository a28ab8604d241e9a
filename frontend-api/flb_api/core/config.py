"""The API's settings, resolved once from the shared ``FLBSettings`` and the environment.

Tokens are never configuration values: the configuration names the environment variables that hold
them (``api.operator_token_env`` for callers of the operator endpoints, ``oracle.control_token_env``
for the oracle's control server). A token that is unset or a placeholder does not stop the API: the
read endpoints serve as usual and the operator endpoints answer 503 with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from flb_dapp.config import FLBSettings, check_secret
from flb_dapp.exceptions import ConfigError

#: Largest integer SQLite stores; path and query numbers are bounded by it (a larger one is a 422).
MAX_SQL_INT = 2**63 - 1


@dataclass(frozen=True)
class Secret:
    """A token read from the environment, or why it cannot be used."""

    env: str
    value: str | None = field(default=None, repr=False)
    problem: str = ""

    @classmethod
    def from_env(cls, env: str, environ: Mapping[str, str]) -> Secret:
        try:
            return cls(env, check_secret(environ.get(env), f"environment variable {env}"))
        except ConfigError as exc:
            return cls(env, None, str(exc))


@dataclass(frozen=True)
class ApiSettings:
    """Everything the app reads at request time."""

    network: str = "ethereum:local:test"
    deployment: str = "deployments/31337.json"
    store: str = ".flb/store"
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = ".flb/api.sqlite"
    cors_origins: tuple[str, ...] = ()
    max_page_size: int = 100
    max_download_bytes: int = 512 << 20
    max_concurrent_downloads: int = 4  # downloads verified and sent at once; more get 503
    poll_interval_s: float = 2.0
    response_cache_entries: int = 1024  # cached read answers (0: no cache); see core/cache.py
    oracle_control_url: str | None = None
    operator_token: Secret = field(default_factory=lambda: Secret("FLB_API_TOKEN", problem="not read"))
    oracle_token: Secret = field(default_factory=lambda: Secret("FLB_ORACLE_TOKEN", problem="not read"))

    def __post_init__(self) -> None:
        if not 1 <= self.max_page_size <= 100_000:
            raise ConfigError(f"api.max_page_size must be 1 .. 100000, got {self.max_page_size}")
        if self.max_download_bytes < 1:
            raise ConfigError(f"api.max_download_bytes must be positive, got {self.max_download_bytes}")
        if self.max_concurrent_downloads < 1:
            raise ConfigError(
                f"api.max_concurrent_downloads must be positive, got {self.max_concurrent_downloads}"
            )
        if not self.poll_interval_s > 0:
            raise ConfigError(f"api.poll_interval_s must be positive, got {self.poll_interval_s}")

    @classmethod
    def from_settings(cls, settings: FLBSettings, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        api = settings.api
        return cls(
            network=settings.network,
            deployment=settings.deployment,
            store=settings.store,
            host=api.host,
            port=api.port,
            database=api.database,
            cors_origins=tuple(api.cors_origins),
            max_page_size=api.max_page_size,
            max_download_bytes=api.max_download_bytes,
            max_concurrent_downloads=api.max_concurrent_downloads,
            poll_interval_s=api.poll_interval_s,
            response_cache_entries=api.response_cache_entries,
            oracle_control_url=api.oracle_control_url.rstrip("/") if api.oracle_control_url else None,
            operator_token=Secret.from_env(api.operator_token_env, env),
            oracle_token=Secret.from_env(settings.oracle.control_token_env, env),
        )
