"""State shared by the `flb` group and its commands: settings, output mode, account and password.

The group's options (``--config``, ``--network``, ``--json``, ``--verbose``, ``--quiet``) land in a
:class:`CLIContext`; a command's own options (``--account``, ``--store`` ...: see
:mod:`flb_dapp.cli.options`) are overrides on top.
Settings are read only when a command first needs them, so ``flb account list`` works even
without a valid flb.yaml. Nothing heavy (Ape, torch) is imported here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from flb_dapp.cli.output import Output
from flb_dapp.exceptions import WalletError


@dataclass
class CLIContext:
    """What every command may read; built by the group, found by :func:`pass_cli`."""

    config_path: str | None = None
    network: str | None = None
    json_mode: bool = False
    quiet: bool = False
    verbose: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    password_file: str | None = None
    _settings: Any = None

    @property
    def output(self) -> Output:
        return Output(json_mode=self.json_mode, quiet=self.quiet, verbose=self.verbose)

    def use(self, **overrides: Any) -> None:
        """Command-line values that win over flb.yaml and the environment (None: not given)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            self.overrides.update(given)
            self._settings = None

    @property
    def settings(self) -> Any:
        """The effective :class:`FLBSettings` (loaded once)."""
        if self._settings is None:
            from flb_dapp.config import load_settings

            self._settings = load_settings(self.config_path, network=self.network, **self.overrides)
        return self._settings

    # --- accounts ----------------------------------------------------------------------------
    def account_name(self) -> str:
        name = self.settings.account
        if not name:
            raise WalletError(
                "no account selected: pass --account ALIAS or set `account:` in flb.yaml "
                "(`flb account list` shows yours, `flb account new ALIAS` makes one)"
            )
        return str(name)

    def password(self, name: str) -> str | None:
        """The password that unlocks ``name``: --password-file, then flb.yaml's password_file, then
        the variable named by password_env, then a hidden prompt on a terminal."""
        from flb_dapp.wallet import is_test_account

        if is_test_account(name):
            return None
        from_file_or_env = self._unattended_password()
        if from_file_or_env is not None:
            return from_file_or_env
        if not sys.stdin.isatty():
            raise WalletError(
                f"account {name!r} needs a password and there is no terminal to ask on: "
                f"pass --password-file FILE or set {self.settings.password_env}"
            )
        return str(click.prompt(f"Password for {name}", hide_input=True))

    def new_password(self, name: str) -> str:
        """A password for a new keystore: from a file / the environment, else typed twice."""
        from_file_or_env = self._unattended_password()
        if from_file_or_env is not None:
            return from_file_or_env
        if not sys.stdin.isatty():
            raise WalletError(
                f"no password for the new account {name!r} and no terminal to ask on: "
                f"pass --password-file FILE or set {self.settings.password_env}"
            )
        return str(
            click.prompt(
                f"Password for the new account {name!r}", hide_input=True, confirmation_prompt="Repeat it"
            )
        )

    def _unattended_password(self) -> str | None:
        from flb_dapp.chain.accounts import read_password

        path = self.password_file or self.settings.password_file
        if path:
            return read_password(path)
        env = self.settings.password_env
        if env and env in os.environ:
            return os.environ[env]
        return None


pass_cli = click.make_pass_decorator(CLIContext, ensure=True)
