"""`jobline user add/list/token/disable`, run as real processes against a real data directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.users.service import authenticate, check_password
from core.db import Database

JOBLINE = [sys.executable, "-m", "cli.main"]


def _env(data_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")}
    return {**clean, "JOBLINE_DATA_DIR": str(data_dir)}


def _jobline(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBLINE, *args], input=stdin, capture_output=True, text=True, env=_env(data_dir)
    )


def _on_db(data_dir: Path, work):  # type: ignore[no-untyped-def]
    async def _run():  # type: ignore[no-untyped-def]
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'jobline.db'}")
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(_run())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    migrated = _jobline(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    return tmp_path


def _who(data_dir: Path, token: str) -> str | None:
    async def work(session):  # type: ignore[no-untyped-def]
        user = await authenticate(session, token)
        return user.username if user else None

    return _on_db(data_dir, work)


def _signs_in(data_dir: Path, login: str, password: str) -> bool:
    async def work(session):  # type: ignore[no-untyped-def]
        return await check_password(session, login, password) is not None

    return _on_db(data_dir, work)


def test_a_command_without_the_data_directory_refuses_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "not-here"
    for args in (
        ("user", "add", "carla", "--role", "office", "--no-password"),
        ("user", "list"),
        ("user", "token", "carla"),
        ("user", "disable", "carla"),
    ):
        answer = _jobline(missing, *args)
        assert answer.returncode == 2, (args, answer.stdout, answer.stderr)
        assert "no Jobline database at" in answer.stderr and "JOBLINE_DATA_DIR" in answer.stderr
        assert answer.stdout == ""
    assert not missing.exists()
    # An empty directory is no data directory either: nothing is created in it.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _jobline(empty, "user", "list").returncode == 2
    assert list(empty.iterdir()) == []


def test_user_add_sets_a_password_from_stdin(data_dir: Path) -> None:
    added = _jobline(
        data_dir,
        *("user", "add", "carla", "--role", "office", "--email", "carla@example.com"),
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert added.returncode == 0, added.stderr
    assert _who(data_dir, added.stdout.strip()) == "carla"
    assert _signs_in(data_dir, "carla", "correct horse battery")
    assert _signs_in(data_dir, "Carla@Example.com", "correct horse battery")
    assert not _signs_in(data_dir, "carla", "correct horse battery!")


def test_user_add_refuses_a_short_or_missing_password_and_adds_no_one(data_dir: Path) -> None:
    short = _jobline(
        data_dir, "user", "add", "carla", "--role", "office", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    # No terminal and no flag: it cannot prompt, so it says how to give one.
    untyped = _jobline(data_dir, "user", "add", "carla", "--role", "office")
    assert untyped.returncode == 2 and "--password-stdin" in untyped.stderr
    listed = _jobline(data_dir, "user", "list")
    assert "carla" not in listed.stdout


def test_list_token_and_disable(data_dir: Path) -> None:
    first = _jobline(
        data_dir,
        "user",
        "add",
        "carla",
        "--role",
        "office",
        "--password-stdin",
        stdin="pw-carla-1\n",
    ).stdout.strip()
    api_only = _jobline(data_dir, "user", "add", "bot", "--role", "manager", "--no-password")
    assert api_only.returncode == 0, api_only.stderr

    listed = _jobline(data_dir, "user", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines[0] == ["NAME", "ROLE", "EMAIL", "ACTIVE", "PASSWORD", "TOKENS"]
    assert ["bot", "manager", "bot@example.com", "yes", "no", "1"] in lines
    assert ["carla", "office", "carla@example.com", "yes", "yes", "1"] in lines

    second = _jobline(data_dir, "user", "token", "carla")
    assert second.returncode == 0, second.stderr
    new_token = second.stdout.strip()
    assert new_token.startswith("jl_") and new_token != first
    assert _who(data_dir, new_token) == "carla"
    assert _who(data_dir, first) is None

    unknown = _jobline(data_dir, "user", "token", "nobody")
    assert unknown.returncode == 2 and "no user named 'nobody'" in unknown.stderr

    disabled = _jobline(data_dir, "user", "disable", "carla")
    assert disabled.returncode == 0, disabled.stderr
    assert _who(data_dir, new_token) is None
    assert not _signs_in(data_dir, "carla", "pw-carla-1")
    listed = [line.split() for line in _jobline(data_dir, "user", "list").stdout.splitlines()]
    assert ["carla", "office", "carla@example.com", "no", "yes", "0"] in listed
    refused = _jobline(data_dir, "user", "token", "carla")
    assert refused.returncode == 2 and "disabled" in refused.stderr


def _at_a_terminal(data_dir: Path, args: list[str], typed: list[str]) -> tuple[int, str]:
    """Run `jobline` with a real terminal (a pty as its controlling tty), typing each line after
    its prompt; its exit code and everything it wrote to the terminal."""
    import fcntl
    import pty
    import select
    import termios

    master, slave = pty.openpty()

    def _own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [*JOBLINE, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(data_dir),
        preexec_fn=_own_terminal,
    )
    os.close(slave)
    seen = b""
    pending = list(typed)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no output for 30 s: {seen!r}"
            try:
                chunk = os.read(master, 1024)
            except OSError:  # the child closed the terminal: it has exited
                break
            if not chunk:
                break
            seen += chunk
            # One line per prompt, typed once the prompt is shown (getpass has turned echo off).
            prompts = seen.count(b"Password")
            if pending and seen.endswith(b": ") and prompts > len(typed) - len(pending):
                os.write(master, pending.pop(0).encode() + b"\n")
    finally:
        os.close(master)
    return process.wait(timeout=30), seen.decode(errors="replace")


def test_user_add_asks_for_the_password_twice_at_a_terminal(data_dir: Path) -> None:
    code, shown = _at_a_terminal(
        data_dir, ["user", "add", "dana", "--role", "sales"], ["typed twice", "typed twice"]
    )
    assert code == 0, shown
    assert "Password:" in shown and "Password (again):" in shown
    assert "typed twice" not in shown  # not echoed
    token = shown.strip().splitlines()[-1].strip()
    assert _who(data_dir, token) == "dana"
    assert _signs_in(data_dir, "dana", "typed twice")

    code, shown = _at_a_terminal(
        data_dir, ["user", "add", "eve", "--role", "sales"], ["first version", "second version"]
    )
    assert code == 2 and "the two passwords differ" in shown
    assert "eve" not in _jobline(data_dir, "user", "list").stdout
