"""README.md stays true: its python blocks run, and its shell commands name real options.

Each python block runs on its own (a reader copies one block), in a fresh namespace and a
temporary working directory so files it writes land there, and prints something. Every
``chainrule ...`` command in a shell block is parsed by the real argument parser.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nn.cli import make_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}[ \t]*\n(.*?)^```", text, flags=re.M | re.S)


def test_the_readme_has_python_examples_and_the_setup_command():
    assert blocks("python"), "README.md has no ```python blocks"
    commands = " ".join(blocks("bash"))
    assert "chainrule train" in commands


@pytest.mark.parametrize("number", range(1, len(blocks("python")) + 1))
def test_each_python_block_runs_alone_and_prints(number, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = blocks("python")[number - 1]
    compiled = compile(code, f"README.md python block {number}", "exec")
    exec(compiled, {"__name__": "readme"})  # the README is ours: running it is the point
    printed = capsys.readouterr().out
    assert printed.strip(), f"python block {number} prints nothing"
    assert "False" not in printed, printed  # e.g. the resumed run must equal one run


def chainrule_commands() -> list[str]:
    found = []
    for block in blocks("bash") + blocks("sh") + blocks("console"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip().removeprefix("$ ")
                if part.startswith("chainrule "):
                    found.append(part.split("#")[0].strip())
    return found


@pytest.mark.parametrize("command", chainrule_commands() or ["chainrule train"])
def test_documented_commands_parse(command):
    argv = shlex.split(command)[1:]
    args = make_parser().parse_args(argv)
    assert callable(args.func)
