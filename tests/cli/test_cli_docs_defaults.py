"""The defaults README.md and docs/*.md state for an option are the option's real default.

A statement is a code span naming the option followed, in the same clause, by its default:
``--val-fraction`` (default 0.15), ``--road-buffer PX`` (tolerance, default 3 px), ``--max-growth D``
(px, default: no limit), ``--quality-fold-epochs`` (default ``--epochs``), ``--max-growth`` (off by
default), or the value in the span itself: ``--warp-method tps`` (default), ``--domain auto``, the
default, ``--epochs 10`` is the default, and in code ``# --split-seed 1000 (default)``. Prose that says something else ("the default: the
size the served model was trained at") is not a value and is not read.

The real default is read from the typer app (``helpers_cli.cli_commands``); an
option whose typer default is None (``train``'s options are layered over ``--config`` files) has
the default of the run configuration's field of the same name (``TrainConfig``,
``QualityConfig``, ``CVConfig`` ... and the options models), the augmentation options, whose
None means "the domain's", the default :class:`~sam2elnet.data.augment.Augmentation`'s, and
``--road-buffer``, whose None means :data:`~sam2elnet.option_values.ROAD_BUFFER_PX` unless
``--road-buffer-m`` is given. A
statement holds when some command with the option has that default (``--batch-size`` has
several).
"""

from __future__ import annotations

import re
from typing import Any

from helpers_cli import PAGES, ROOT, cli_commands
from pydantic import BaseModel

_VALUE = (
    r"`[^`]*`|[0-9][0-9.]*(?:,[0-9][0-9.]*)?(?: ?%| ?px|[KMG])?|no limit|[a-z][a-z0-9-]*(?=[,;)])"
)
STATED = re.compile(
    r"`(?P<flag>--[a-z][a-z0-9-]*)(?: (?P<given>[^`]*))?`(?:"
    r",? \(?\**(?:is )?the default\b|,? \(\**default\)"  # the value in the span
    r"|[^`.;:()]{0,30}?\(?[^`.;()]{0,30}?\b"  # a few words, maybe into a parenthesis
    r"(?:default:? (?P<value>" + _VALUE + r")|(?P<off>off) by default))"
)
"""A stated default (see the module docstring): the option, then the value after it or in it."""
IN_CODE = re.compile(r"(?<![\w`-])(?P<flag>--[a-z][a-z0-9-]*) (?P<given>[^\s`,()]+) \(default\)")
"""The same in a shell comment of a code block: ``# --curve-points 6 (default)``."""

AUGMENTATION = {
    "aug_scale": "scale",
    "aug_photometric": "photometric",
    "aug_band_jitter": "band_jitter",
}
"""Options whose None means the domain's augmentation -> the Augmentation field (non-road data)."""


def stated_defaults(text: str) -> list[tuple[str, str]]:
    """``(--option, value)`` for each default ``text`` states (lines joined, backticks dropped)."""
    text = re.sub(r"\s*\n\s*", " ", text)
    found = []
    for m in STATED.finditer(text):
        value = m["value"] or m["off"] or m["given"]
        if value:
            found.append((m["flag"], value.strip("`").strip()))
    found += [(m["flag"], m["given"]) for m in IN_CODE.finditer(text)]
    return found


def _field_defaults() -> dict[str, list[Any]]:
    """Field name -> the defaults of every run configuration / options model field so named."""
    from sam2elnet import config, options
    from sam2elnet.data.augment import Augmentation
    from sam2elnet.engine import downstream_config
    from sam2elnet.model import elnet
    from sam2elnet.option_values import ROAD_BUFFER_PX
    from sam2elnet.pipeline import crossval_config, demo, experiment_config

    found: dict[str, list[Any]] = {}
    for mod in (
        options,
        config,
        experiment_config,
        crossval_config,
        demo,
        downstream_config,
        elnet,
    ):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
                for name, field in obj.model_fields.items():
                    found.setdefault(name, []).append(field.default)
    for option, name in AUGMENTATION.items():
        found.setdefault(option, []).append(getattr(Augmentation(), name))
    found["road_buffer"].append(ROAD_BUFFER_PX)  # None: 3 px unless metres are given
    return found


def real_defaults(flag: str, commands: dict[str, Any], fields: dict[str, list[Any]]) -> list[Any]:
    """The defaults of ``flag`` on every command that has it (None: the same-named fields')."""
    out: list[Any] = []
    for command in commands.values():
        for param in command.params:
            if flag in param.opts:
                out.append(param.default)
                if param.default is None:
                    out += fields.get(param.name, [])
    return out


def same_default(stated: str, default: Any) -> bool:
    """Whether the words ``stated`` (``0.15``, ``75 %``, ``3 px``, ``1.5G``, ``0.75,1.33``, ``auto``,
    ``no limit``, ``off``, ``--epochs``: another option's value) name ``default``."""
    from sam2elnet.option_values import memory_bytes

    s = stated.lower()
    if s.startswith("--") or s in ("no limit", "off"):
        return default is None or default is False
    m = re.fullmatch(r"([0-9][0-9.]*(?:,[0-9][0-9.]*)?) ?(%|px|[kmg])?", s)
    if m is None:
        return str(default).lower() == s
    if m[2] in ("k", "m", "g"):
        return default is not None and memory_bytes(s) == memory_bytes(default)
    try:
        numbers = tuple(float(x) / (100 if m[2] == "%" else 1) for x in m[1].split(","))
    except ValueError:  # digits and dots, no number: an address (``--host 127.0.0.1``)
        return str(default).lower() == s
    try:
        got = tuple(float(x) for x in default) if isinstance(default, tuple) else (float(default),)
    except (TypeError, ValueError):
        return False
    return got == numbers


def wrong_defaults(text: str, commands: dict[str, Any], fields: dict[str, list[Any]]) -> list[str]:
    """``--option: stated X, real Y`` for each stated default of ``text`` that is not the real one."""
    bad = []
    for flag, value in stated_defaults(text):
        real = real_defaults(flag, commands, fields)
        if real and not any(same_default(value, d) for d in real):
            shown = sorted({repr(d) for d in real if d is not None}) or ["None"]
            bad.append(f"{flag}: stated {value}, real {' / '.join(shown)}")
    return bad


def test_stated_defaults_are_the_real_ones() -> None:
    commands, fields = cli_commands(), _field_defaults()
    bad = [
        f"{page.relative_to(ROOT)}: {b}"
        for page in PAGES
        for b in wrong_defaults(page.read_text(encoding="utf-8"), commands, fields)
    ]
    assert not bad, "defaults the docs state that the code does not have:\n" + "\n".join(bad)


def test_the_pages_state_defaults_this_check_reads() -> None:
    """The check reads the statements the pages make (a reworded pattern would read none)."""
    flags = {f for page in PAGES for f, _ in stated_defaults(page.read_text(encoding="utf-8"))}
    assert {"--val-fraction", "--max-memory", "--warp-method", "--road-buffer"} <= flags


def test_a_wrong_stated_default_is_caught() -> None:
    """Guards on a made-up page: wrong number, size, word, unit-carrying and in-span values are
    reported; right ones, "off by default" of an option without default and prose are not."""
    commands, fields = cli_commands(), _field_defaults()
    page = (
        "`--val-fraction` (default 0.2) keeps ... `--max-memory` (default 2G; e.g. ...). "
        "`--warp-method polynomial` (default) and `--road-buffer PX`, default 3 px.\n"
        "`--road-buffer PX` (their buffer tolerance, default 5; or) and `--max-growth` stays off by\n"
        "default; `--tta` (default 0), `--image-size` px: by default the size it was trained at. "
        "`--aug-scale LOW,HIGH` (default 0.5,2; roads 0.5,2). `--host 0.0.0.0` (the default).\n"
        "```\nelnet experiment --out o   # --split-seed 7 (default), --curve-points 6 (default)\n```"
    )
    assert wrong_defaults(page, commands, fields) == [
        "--val-fraction: stated 0.2, real 0.15",
        "--max-memory: stated 2G, real 1500000000",
        "--warp-method: stated polynomial, real 'tps'",
        "--road-buffer: stated 5, real 3.0",
        "--aug-scale: stated 0.5,2, real (0.75, 1.33)",
        "--host: stated 0.0.0.0, real '127.0.0.1'",
        "--split-seed: stated 7, real 1000",
    ]
