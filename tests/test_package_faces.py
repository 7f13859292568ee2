"""A public name of a package face means one thing, whatever was imported before.

Python sets a package's attribute to a submodule once that submodule is imported
(``import sam2elnet.data.normalize`` makes ``sam2elnet.data.normalize`` the module). A face name
equal to a submodule's name therefore gave the exported object on first use and the module after
anything imported the submodule: ``from sam2elnet.data import normalize`` was the function in a
fresh interpreter and the module after that (the first use imports the submodule), or after
anything else had imported it (``sam2elnet.data.datasets`` does).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import sam2elnet

SRC = Path(sam2elnet.__file__).resolve().parents[1]


def packages() -> list[str]:
    """Every package under ``sam2elnet`` (folders with an ``__init__.py``), the root included."""
    root = Path(sam2elnet.__file__).resolve().parent
    return sorted(
        ".".join(("sam2elnet", *p.parent.relative_to(root).parts))
        for p in root.rglob("__init__.py")
    )


def clashes(package: str) -> list[str]:
    """Names of ``package.__all__`` that are also submodules (or subpackages) of ``package``."""
    module = importlib.import_module(package)
    subs = {info.name for info in pkgutil.iter_modules(module.__path__)}
    return [f"{package}.{name}" for name in getattr(module, "__all__", ()) if name in subs]


def test_every_package_is_checked() -> None:
    found = packages()
    for name in ("sam2elnet.data", "sam2elnet.engine", "sam2elnet.engine.metrics"):
        assert name in found
    assert "normalize" in {
        i.name for i in pkgutil.iter_modules(importlib.import_module("sam2elnet.data").__path__)
    }


def test_no_face_name_is_a_submodule_name() -> None:
    bad = [c for p in packages() for c in clashes(p)]
    assert not bad, "public names that are also submodules (rename one):\n" + "\n".join(bad)


def test_clashes_are_found(tmp_path: Path, monkeypatch) -> None:
    """The check above can fail: a package exporting ``thing`` next to ``thing.py`` is named."""
    pkg = tmp_path / "clashpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("__all__ = ['thing', 'other']\n", encoding="utf-8")
    (pkg / "thing.py").write_text("def thing():\n    return 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("clashpkg", None)
    try:
        assert clashes("clashpkg") == ["clashpkg.thing"]
    finally:
        sys.modules.pop("clashpkg", None)


def test_data_normalize_is_the_module_before_and_after_the_submodule_is_imported() -> None:
    """In a fresh interpreter (the import order is the point): ``sam2elnet.data.normalize`` was
    the function on first use and the module after; now the module both times, whose
    ``normalize`` function the docs import."""
    probe = (
        "import sam2elnet.data as data\n"
        "first = data.normalize\n"
        "import sam2elnet.data.normalize\n"
        "from sam2elnet.data import normalize as then\n"
        "print(first is then is data.normalize, type(first).__name__, callable(first.normalize))\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["True", "module", "True"], got.stdout + got.stderr
