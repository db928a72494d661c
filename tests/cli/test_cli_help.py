"""`jobline --version` and `--help`, run as the installed console script: the version is the
package's, every option's default is named, and each command names the JOBLINE_* variables it
reads — all of them real Settings fields, and every Settings field named by some command."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from cli.main import parser
from core.config import Settings

JOBLINE = str(Path(sys.executable).parent / "jobline")
ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\bJOBLINE_[A-Z0-9_]+\b")


def _jobline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")}
    # A wide terminal: argparse would otherwise wrap help text at the pipe's default width.
    return subprocess.run(
        [JOBLINE, *args],
        capture_output=True,
        text=True,
        env={**clean, "COLUMNS": "200", **env},
        timeout=60,
    )


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its words (`api`, `user add`), found in the parser itself so a
    new command is checked without editing this test."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, node: argparse.ArgumentParser) -> None:
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    words = f"{prefix} {name}".strip()
                    found[words] = child
                    walk(words, child)

    walk("", parser())
    return found


def test_version_is_the_installed_package_version() -> None:
    answer = _jobline("--version")
    assert answer.returncode == 0, answer.stderr
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert version("jobline") == pyproject["project"]["version"]
    assert answer.stdout.strip() == f"jobline {pyproject['project']['version']}"


@pytest.mark.parametrize("words", sorted(_commands()))
def test_each_command_help_names_its_defaults_and_variables(words: str) -> None:
    # Production without a secret: Settings would refuse, yet help must still be readable.
    answer = _jobline(*words.split(), "--help", JOBLINE_ENVIRONMENT="production")
    assert answer.returncode == 0, answer.stderr
    text = answer.stdout
    command = _commands()[words]
    for action in command._actions:
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or action.option_strings == []:
            continue  # flags, positionals and options without a default have none to name
        assert f"default: {default}" in text, f"`jobline {words}`: {action.dest}'s default"
    named = VARIABLE.findall(text.split("environment (or .env) read by this command:")[-1])
    assert named, f"`jobline {words} --help` names no JOBLINE_* variable"
    for name in named:
        field = name.removeprefix("JOBLINE_").lower()
        assert field in Settings.model_fields, f"{name} is not a setting"


def test_every_setting_is_named_by_some_command() -> None:
    named: set[str] = set()
    for words in ("api", "worker", "migrate", "dev", "user"):
        answer = _jobline(*words.split(), "--help")
        assert answer.returncode == 0, answer.stderr
        named |= set(VARIABLE.findall(answer.stdout))
    expected = {f"JOBLINE_{field.upper()}" for field in Settings.model_fields}
    assert expected - named == set(), "settings no command's help names"


def test_the_top_level_help_lists_commands_and_version() -> None:
    answer = _jobline("--help")
    assert answer.returncode == 0, answer.stderr
    for word in ("--version", "dev", "api", "worker", "migrate", "user", "COMMAND --help"):
        assert word in answer.stdout
