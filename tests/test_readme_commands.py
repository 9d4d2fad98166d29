"""The README's command reference and the CLI agree (issue 16, "Done when"): every command `fs --help` lists is in
the README's "The command line" block, and every command that block names exists."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from fs_cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def _reference_block() -> str:
    text = README.read_text()
    section = text.split("## The command line", 1)[1]
    return section.split("```text", 1)[1].split("```", 1)[0]


def _named(block: str) -> set[str]:
    """Commands the block names: the word after `fs`, and the words after `|` that continue a list of commands."""
    names = set()
    for line in block.splitlines():
        for m in re.finditer(r"(?:^|;\s+)fs ([a-z][a-z-]*)", line):
            names.add(m.group(1))
        head = line.split("  ")[0]  # the command part, before the description
        for m in re.finditer(r"\|\s*([a-z][a-z-]+)\b", head):
            names.add(m.group(1))
    return names - {"fs"}  # `fs --version | fs [--verbose] COMMAND`: the program itself


def test_every_command_is_in_the_readme_reference_and_every_named_one_exists():
    listed = set(cli.COMMANDS)
    help_text = CliRunner().invoke(cli.main, ["--help"]).output
    assert all(re.search(rf"^\s+{re.escape(n)}\s", help_text, re.M) for n in listed)
    named = _named(_reference_block())
    subcommands = {"create", "list", "show", "export", "register", "alias", "best", "validate", "lineage", "score",
                   "monitor"}  # of `training-dataset` and `model`, after their group's name
    assert listed <= named, f"missing from the README: {sorted(listed - named)}"
    assert named - subcommands - {"--version"} <= listed | subcommands, sorted(named - listed - subcommands)
