"""On a real terminal (pexpect's pseudo-terminal): hidden password prompts, a live progress bar
during `flb train`, and colour that NO_COLOR turns off."""

from __future__ import annotations

import io
import re

import pexpect
import pytest

from tests.cli.conftest import FLB, PASSWORD, Workspace

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(ws: Workspace, *args: str, **env: str) -> tuple[pexpect.spawn, io.StringIO]:
    log = io.StringIO()
    child = pexpect.spawn(
        str(FLB),
        list(args),
        cwd=str(ws.root),
        env=ws.env(TERM="xterm-256color", **env),
        encoding="utf-8",
        timeout=180,
        dimensions=(40, 140),
    )
    child.logfile_read = log  # everything the terminal showed
    return child, log


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1)


def test_password_prompts_do_not_echo(workspace: Workspace) -> None:
    ws = workspace
    child, log = spawn(ws, "account", "new", "alice")
    child.expect_exact("Password for the new account 'alice': ")
    child.sendline(PASSWORD)
    child.expect_exact("Repeat it: ")
    child.sendline(PASSWORD)
    child.expect(r"Created account 'alice': (0x[0-9a-fA-F]{40})")
    address = child.match.group(1)
    assert finish(child) == 0
    assert PASSWORD not in log.getvalue()
    ws.fund(address)

    child, log = spawn(ws, "register", "--account", "alice")
    child.expect_exact("Password for alice: ")
    child.sendline("a wrong guess")
    child.expect_exact("Error: wrong password for account 'alice'")
    assert finish(child) == 1
    assert "a wrong guess" not in log.getvalue()

    child, log = spawn(ws, "register", "--account", "alice")
    child.expect_exact("Password for alice: ")
    child.sendline(PASSWORD)
    child.expect("registered 0x[0-9a-fA-F]{40} with commitment 0x[0-9a-f]{64}")
    assert finish(child) == 0
    assert PASSWORD not in log.getvalue()


def test_train_shows_a_progress_bar(workspace: Workspace) -> None:
    ws = workspace
    child, log = spawn(
        ws,
        "train",
        "--global-cid",
        ws.record.initial_model_cid,
        "--round",
        "1",
        "--account",
        "test:3",
        "--steps",
        "6",
        "--threads",
        "1",
        "--out",
        "update.safetensors",
    )
    child.expect(r"Training.*━.*\d+/6 steps")  # rich's bar: description, bar, M/N steps
    child.expect(r"6/6 steps")
    child.expect("Saved the round 1 update to")
    assert finish(child) == 0
    screen = log.getvalue()
    assert ANSI.search(screen)  # drawn live, with cursor control: a real progress bar
    assert re.search(r"loss \d+\.\d{4}", screen)
    assert (ws.root / "update.safetensors").is_file()


def test_errors_are_red_on_a_terminal_unless_no_color(workspace: Workspace) -> None:
    ws = workspace
    env = {k: v for k, v in ws.env().items() if k != "NO_COLOR"}
    child = pexpect.spawn(
        str(FLB),
        ["register", "--dry-run", "--data", "absent"],
        cwd=str(ws.root),
        env={**env, "TERM": "xterm-256color"},
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    assert "\x1b[31mError: no data at absent" in child.before
    child, log = spawn(ws, "register", "--dry-run", "--data", "absent")  # NO_COLOR=1 from ws.env()
    assert finish(child) == 2
    assert "Error: no data at absent" in log.getvalue() and not ANSI.search(log.getvalue())
