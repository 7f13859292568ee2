"""Lazy package faces: ``from sam2elnet.engine import Predictor`` without importing every submodule.

A package ``__init__`` lists its public names per submodule and gets a module ``__getattr__`` /
``__dir__`` pair from :func:`lazy_exports`; a name's submodule is imported on first use
(PEP 562), so ``import sam2elnet.engine`` and ``elnet --help`` stay fast (no torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """Build ``__all__``, ``__getattr__`` and ``__dir__`` for a package face.

    Args:
        package: the package's ``__name__``.
        exports: submodule name (relative to the package) -> public names it defines.

    Returns:
        ``(__all__, __getattr__, __dir__)`` to assign at module level.
    """
    where = {name: module for module, names in exports.items() for name in names}
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return names, __getattr__, __dir__
