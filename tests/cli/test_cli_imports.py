"""The CLI's modules import a name at the top when they already import its module there: a
function-level import is kept for what the command needs only when it runs (rasterio, torch,
the engine), so ``elnet --help`` starts fast; a second, inline import of a module loaded at
start-up anyway (job_options' check_options, pipeline_cmd's run_demo) only hides what a module
uses."""

from __future__ import annotations

import ast
from pathlib import Path

import sam2elnet.cli

CLI = Path(sam2elnet.cli.__file__).parent


def inline_imports_of_top_modules(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of each import inside a function from a module that ``source``
    already imports at its top level."""
    tree = ast.parse(source)
    top: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module)
        elif isinstance(node, ast.Import):
            top |= {a.name for a in node.names}
    found = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module in top:
                found.add((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found |= {(node.lineno, a.name) for a in node.names if a.name in top}
    return sorted(found)


def test_cli_modules_import_no_top_level_module_again_inline() -> None:
    found = [
        f"{p.name}:{line} {mod}"
        for p in sorted(CLI.rglob("*.py"))
        for line, mod in inline_imports_of_top_modules(p.read_text())
    ]
    assert found == []


def test_the_check_sees_an_inline_import_of_a_top_level_module() -> None:
    planted = (
        "from sam2elnet.option_checks import option_default\n"
        "import json\n\n"
        "def f():\n"
        "    from sam2elnet.option_checks import check_options\n"
        "    from sam2elnet.data.warp import check_warp_options\n"
        "    import json\n"
    )
    assert inline_imports_of_top_modules(planted) == [
        (5, "sam2elnet.option_checks"),
        (7, "json"),
    ]
