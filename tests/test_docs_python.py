"""The ```python examples of README.md and docs/*.md are code a user can paste: each block
compiles on its own, uses only names it imports or defines (or builtins: ruff's F821 on the
block as a file), imports ``sam2elnet`` names that exist, and calls each imported function or
class (``f(...)``, ``Cls.method(...)``) with arguments its signature takes. A renamed module,
function or keyword argument fails here. The blocks are not run (they read files a user has).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the first code line, code) of each ```python block of a Markdown text."""
    return [(text[: m.start(1)].count("\n") + 1, m.group(1)) for m in _FENCE.finditer(text)]


def _blocks() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for line, code in python_blocks(page.read_text(encoding="utf-8")):
            out.append((f"{page.relative_to(ROOT)}:{line}", code))
    return out


BLOCKS = _blocks()


def _ruff() -> str | None:
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.exists() else shutil.which("ruff")


def undefined_names(blocks: list[tuple[str, str]], tmp: Path) -> list[str]:
    """``where: undefined name X`` for each name a block uses but neither imports, defines nor
    has as a builtin (ruff F821 on each block written as its own file)."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e .[dev])")
    where = {}
    for i, (place, code) in enumerate(blocks):
        f = tmp / f"block_{i}.py"
        f.write_text(code, encoding="utf-8")
        where[f.name] = place
    run = subprocess.run(
        [ruff, "check", "--isolated", "--no-cache", "--select", "F821", "--output-format",
         "json", str(tmp)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    problems = []
    for hit in json.loads(run.stdout or "[]"):
        page, line = where[Path(hit["filename"]).name].rsplit(":", 1)
        problems.append(f"{page}:{int(line) + hit['location']['row'] - 1}: {hit['message']}")
    return sorted(problems)


def api_problems(place: str, code: str) -> list[str]:
    """Imports of ``sam2elnet`` names that do not exist, and calls of imported functions /
    classes (or their attributes) with arguments their signature does not take."""
    page, first = place.rsplit(":", 1)
    at = lambda node: f"{page}:{int(first) + node.lineno - 1}"  # noqa: E731
    tree = ast.parse(code)
    bound: dict[str, Any] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sam2elnet"):
            try:
                module = importlib.import_module(node.module)
            except ImportError as err:
                problems.append(f"{at(node)}: cannot import {node.module} ({err})")
                continue
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                if obj is None:
                    problems.append(f"{at(node)}: {node.module} has no name {alias.name!r}")
                else:
                    bound[alias.asname or alias.name] = obj
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _unbindable(node):
            continue
        target = _target(node.func, bound)
        if target is None:
            continue
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            continue
        try:
            sig.bind(*node.args, **{k.arg: k.value for k in node.keywords})
        except TypeError as err:
            problems.append(f"{at(node)}: {ast.unparse(node.func)}(...): {err}")
    return problems


def _unbindable(call: ast.Call) -> bool:
    """``*args`` / ``**kwargs`` in the call: the arguments are not known from the source."""
    return any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    )


def _target(func: ast.AST, bound: dict[str, Any]) -> Any:
    """The imported object a call names (``f``, ``Cls``, ``Cls.method``), else None."""
    if isinstance(func, ast.Name):
        obj = bound.get(func.id)
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = bound.get(func.value.id)
        obj = None if base is None or inspect.ismodule(base) else getattr(base, func.attr, None)
    else:
        return None
    return obj if callable(obj) and not inspect.ismodule(obj) else None


def test_docs_have_python_examples() -> None:
    assert len(BLOCKS) >= 10
    assert any(p.startswith("README.md:") for p, _ in BLOCKS)


@pytest.mark.parametrize(("place", "code"), BLOCKS, ids=[p for p, _ in BLOCKS])
def test_block_compiles(place: str, code: str) -> None:
    compile(code, place, "exec")


def test_blocks_use_only_names_they_import_or_define(tmp_path: Path) -> None:
    problems = undefined_names(BLOCKS, tmp_path)
    assert not problems, "import or define these in the block:\n" + "\n".join(problems)


@pytest.mark.parametrize(("place", "code"), BLOCKS, ids=[p for p, _ in BLOCKS])
def test_block_matches_the_api(place: str, code: str) -> None:
    problems = api_problems(place, code)
    assert not problems, "\n".join(problems)


_BAD = """from sam2elnet.model import ModelConfig, build_model, no_such_function
cfg = ModelConfig(size="tiny", in_bands=1, weights=None)
model = build_model(cfg, strict=True)
out = model(image)
"""


def test_checks_catch_a_wrong_block(tmp_path: Path) -> None:
    """Guard on a made-up page: an unknown import, keyword and name are all reported, with the
    page line of each."""
    (block,) = python_blocks(f"# Page\n\ntext\n\n```python\n{_BAD}```\n")
    assert block[0] == 6
    place = f"docs/x.md:{block[0]}"
    assert api_problems(place, block[1]) == [
        "docs/x.md:6: sam2elnet.model has no name 'no_such_function'",
        "docs/x.md:8: build_model(...): got an unexpected keyword argument 'strict'",
    ]
    assert undefined_names([(place, block[1])], tmp_path) == ["docs/x.md:9: Undefined name `image`"]
