"""The options README.md and docs/*.md name are the CLI's real ones, on the command that shows them.

Read from the typer app itself (``typer.main.get_command``), not from ``--help`` text, so a renamed
or removed option fails here the day it changes. Two checks:

* every ``elnet CMD ...`` invocation in the pages' code (fenced blocks, backslash continuations
  joined, and inline code; prose is not read) uses only options of CMD (``elnet weights download``
  of its subcommand);
* every ``--flag`` anywhere on the pages is an option of some ``elnet`` command, of a script in
  ``benchmarks/`` (its ``add_argument`` calls) or of another tool the pages show
  (``FOREIGN``: GDAL, Docker, torchrun, Ray, Label Studio, pytest-xdist);
* and the other way round, every option of every command is named (one of its flags, e.g.
  ``--no-progress`` or ``--progress``) on a page that shows that command in its code: 13 options
  (``stats --max-images``, ``serve --host``, ...) were on no page at all.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers_cli import PAGES, ROOT, cli_commands

FOREIGN = {
    "--calc": "gdal_calc.py",
    "--outfile": "gdal_calc.py",
    "--type": "gdal_calc.py",
    "--cpus": "docker run",
    "--cpuset-cpus": "docker run",
    "--nproc-per-node": "torchrun",
    "--head": "ray start",
    "--num-gpus": "ray start",
    "--num-cpus": "ray start",
    "--no-browser": "label-studio start",
    "--dist": "pytest (pytest-xdist)",
}
"""Flags of other tools that the pages show in their commands (flag -> tool)."""

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*\*?")
_START = r"(?<![\w./-])elnet +"
INVOCATION = re.compile(_START + r"([a-z][a-z-]*)((?:(?!" + _START + r")[^\n`|;&)])*)")
"""``elnet CMD rest``: ``rest`` stops at the line's end, ``|;&)`` or where the next ``elnet `` starts."""
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> list[str]:
    """The fenced code blocks of a Markdown ``text``, then its inline code spans (outside blocks)."""
    blocks: list[str] = []

    def take(m: re.Match[str]) -> str:
        blocks.append(m.group(1))
        return "\n"

    prose = FENCE.sub(take, text)
    return blocks + INLINE.findall(prose)


def _options(command: Any) -> set[str]:
    flags = {"--help"}
    for param in command.params:
        flags.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return flags


def _bench_options() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "benchmarks").glob("*.py"))
    return set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", text))


def _known(flag: str, known: set[str]) -> bool:
    """``flag`` is one of ``known``; ``--aug-*`` (or a bare ``--aug-``) stands for a family."""
    stem = flag.rstrip("*")
    if stem.endswith("-"):
        return any(k.startswith(stem) for k in known)
    return stem in known


def wrong_invocation_options(text: str, commands: dict[str, Any]) -> list[str]:
    """``"elnet CMD --flag"`` for each flag an ``elnet CMD`` invocation in ``text``'s code lacks.

    Only code is read (``code_spans``: fenced blocks and inline code), never prose; in code,
    "the elnet job" is no invocation (``job`` is no command) and is skipped. An invocation ends at
    the end of its line (continuations joined), a pipe, ``;``, ``&``, ``)``, ``->``, a shell
    comment (`` # ...``) or where the next ``elnet `` starts.
    """
    bad = []
    code = "\n".join(span.replace("\\\n", " ") for span in code_spans(text))
    for m in INVOCATION.finditer(code):
        name, rest = m.group(1), re.split(r"->|\s#", m.group(2))[0]  # prose arrow, shell comment
        if name not in commands:
            continue
        words = rest.split()
        if words and f"{name} {words[0]}" in commands:
            name = f"{name} {words[0]}"
        allowed = _options(commands[name])
        bad += [f"elnet {name} {f}" for f in FLAG.findall(rest) if not _known(f, allowed)]
    return bad


def unknown_flags(text: str, known: set[str]) -> list[str]:
    """Flags named in ``text`` that no command, benchmark script or listed tool has."""
    return sorted({f for f in FLAG.findall(text) if not _known(f, known)})


def _all_known() -> set[str]:
    flags = set().union(*(_options(c) for c in cli_commands().values()))
    return flags | _bench_options() | set(FOREIGN)


def test_invocations_use_their_commands_options() -> None:
    commands = cli_commands()
    bad = [
        f"{page.relative_to(ROOT)}: {b}"
        for page in PAGES
        for b in wrong_invocation_options(page.read_text(encoding="utf-8"), commands)
    ]
    assert not bad, "options the command does not have (renamed? other command?):\n" + "\n".join(
        bad
    )


def test_every_flag_on_the_pages_exists() -> None:
    known = _all_known()
    bad = [
        f"{page.relative_to(ROOT)}: {f}"
        for page in PAGES
        for f in unknown_flags(page.read_text(encoding="utf-8"), known)
    ]
    assert not bad, "flags no elnet command, benchmark or listed tool has:\n" + "\n".join(bad)


def test_checks_catch_made_up_and_misplaced_options() -> None:
    """Guards: a made-up flag, and a real flag on the wrong command, are both reported."""
    commands = cli_commands()
    page = (
        "Run\n\n```\nelnet annotate --model m.pt --images IMG \\\n    --out OUT --made-up-flag 3\n```\n"
        "then `elnet train --min-quality 0.8` and `elnet weights download --size tiny`.\n"
        "```\nelnet import x.zip --from cvat --out m  # CVAT (export --format coco)\n```\n"
        "The elnet job (elnet annotate ...) -> elnet train --init-model M.\n"
    )
    assert wrong_invocation_options(page, commands) == [
        "elnet annotate --made-up-flag",
        "elnet train --min-quality",
    ]
    assert unknown_flags(page + " `--no-such-option`, `--aug-*`", _all_known()) == [
        "--made-up-flag",
        "--no-such-option",
    ]


def test_prose_is_not_read_and_an_invocation_ends_at_the_next() -> None:
    """Guards: prose naming a command near another's option is no invocation, and two commands
    in one code span are two invocations (the second's options are not the first's)."""
    commands = cli_commands()
    prose = (
        "Like elnet train, annotate takes --min-quality.\n"
        "then elnet train --data D --out O, or elnet evaluate --pred P.\n"
    )
    assert wrong_invocation_options(prose, commands) == []
    code = "then `elnet train --data D --out O, or elnet evaluate --pred P --tau 0.5`.\n"
    assert wrong_invocation_options(code, commands) == []
    swapped = "```\nelnet train --data D --out O; elnet evaluate --pred P --epochs 3\n```\n"
    assert wrong_invocation_options(swapped, commands) == ["elnet evaluate --epochs"]
    two = "`elnet train --data D elnet evaluate --pred P`"
    assert wrong_invocation_options(two, commands) == []


def readme_missing_commands(readme: str, names: list[str]) -> list[str]:
    """Commands without a row ``| `elnet CMD` | ...`` in README.md's table of commands."""
    start = readme.find("\n## Commands")
    assert start >= 0, "README.md has no '## Commands' heading (renamed? this check reads it)"
    end = readme.find("\n## ", start + 1)
    table = readme[start : end if end >= 0 else len(readme)]
    return [n for n in names if f"| `elnet {n}` |" not in table]


def test_readme_lists_every_command() -> None:
    names = [n for n in cli_commands() if " " not in n]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not readme_missing_commands(readme, names)


def test_readme_check_catches_a_missing_row() -> None:
    """Guards on a made-up README: a command named only outside the table is missing, and a page
    without the heading fails with its name."""
    readme = (
        "# Tool\n\n## Commands\n\n| Command | Job |\n|---|---|\n| `elnet train` | trains |\n"
        "\n## Later\n\n| `elnet synth` | here is no table row of Commands |\n"
    )
    assert readme_missing_commands(readme, ["train", "synth"]) == ["synth"]
    with pytest.raises(AssertionError, match="no '## Commands' heading"):
        readme_missing_commands("# Tool\n", ["train"])


def _named(flag: str, named: set[str]) -> bool:
    """``flag`` is in ``named``, or a family there covers it (``--aug-*``)."""
    fams = [n.rstrip("*") for n in named if n.rstrip("*").endswith("-")]
    return flag in named or any(flag.startswith(f) for f in fams)


def undocumented_options(pages: list[str], commands: dict[str, Any]) -> list[str]:
    """``"elnet CMD --flag"`` for each option of a command (``commands``: the runnable ones) whose
    flags none of the ``pages`` that show ``elnet CMD`` in their code names (anywhere on the
    page: prose, tables, code); a command no page shows has all its options listed."""
    shown: dict[str, set[str]] = {name: set() for name in commands}
    for text in pages:
        code = "\n".join(span.replace("\\\n", " ") for span in code_spans(text))
        for m in INVOCATION.finditer(code):
            words = m.group(2).split()
            for name in (m.group(1), f"{m.group(1)} {words[0]}" if words else ""):
                if name in shown:
                    shown[name].update(FLAG.findall(text))
    missing = []
    for name, command in commands.items():
        for param in command.params:
            flags = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
            if flags and not any(_named(f, shown[name]) for f in flags):
                missing.append(f"elnet {name} {flags[0]}")
    return missing


def test_every_option_is_named_where_its_command_is_shown() -> None:
    pages = [page.read_text(encoding="utf-8") for page in PAGES]
    missing = undocumented_options(pages, cli_commands(leaves=True))
    assert not missing, (
        "options no page that shows the command names (add each to the page a user reads for "
        "that command: what it does, its default):\n" + "\n".join(missing)
    )


def test_the_undocumented_option_check_catches_one() -> None:
    """Guards: serve's options all named but --host; --host named only on a page that never
    shows `elnet serve` (another command's page) does not count; --aug-* covers a family."""
    commands = cli_commands(leaves=True)
    serve = {"serve": commands["serve"]}
    flags = sorted(
        set().union(*(set(p.opts) | set(p.secondary_opts) for p in serve["serve"].params))
    )
    rest = " ".join(f"`{f}`" for f in flags if f.startswith("--") and f != "--host")
    page = f"```\nelnet serve --model m.pt\n```\nIts options: {rest}.\n"
    other = "```\nelnet annotate --model m.pt\n```\n`--host` is named here.\n"
    assert undocumented_options([page, other], serve) == ["elnet serve --host"]
    assert undocumented_options([page + " and `--host`"], serve) == []
    assert undocumented_options([], serve)[:1] == ["elnet serve --model"]
    assert _named("--aug-scale", {"--aug-*"}) and not _named("--aug-scale", {"--aug"})
