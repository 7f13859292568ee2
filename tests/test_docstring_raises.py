"""Public functions and methods that can raise a user-facing error say so in a ``Raises:`` section.

The public API is every function in ``__all__`` of the subpackages (``sam2elnet.data``,
``engine``, ``export``, ``model``, ``pipeline``), the training function
``sam2elnet.engine.train.train``, the public methods (regular, class and static methods whose
names do not start with ``_``) of the classes in those ``__all__`` lists, the methods they inherit
from other ``sam2elnet`` classes included (:func:`public_methods`; what it leaves out and why is
said there), and the constructors of those classes (``__init__`` and a dataclass's
``__post_init__``, :func:`public_constructors`), whose errors the class docstring or
``__init__``'s names (the project writes them in the class docstring). "Can raise" is read from
the source with ``ast``: a ``raise`` of a :class:`~sam2elnet.errors.UserError` (or a subclass:
DataError, CheckpointError, ...) in the function or in a ``sam2elnet`` function, constructor or
static / class method it calls by name or through ``self.`` / ``cls.`` (the method of the class
that defines the caller), followed through the package; a call inside ``try`` whose ``except``
catches the error without raising again does not count. The section must name each such error
or a base class of it (``DataError`` covers ``NothingDoneError``; ``UserError`` covers all).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sam2elnet.errors import UserError

PACKAGES = (
    "sam2elnet.data",
    "sam2elnet.engine",
    "sam2elnet.export",
    "sam2elnet.model",
    "sam2elnet.pipeline",
)
# public functions not re-exported by name (``sam2elnet.engine.train`` is the submodule there)
EXTRA = ("sam2elnet.engine.train.train",)


class RaiseFinder:
    """The :class:`UserError` classes a function can raise, each with the call chain to a
    ``raise`` of it (for the failure message). Only code of modules under ``prefix`` is read."""

    def __init__(self, prefix: str = "sam2elnet") -> None:
        self.prefix = prefix
        self.memo: dict[int, dict[type, str]] = {}

    def raises(self, func: Any) -> dict[type, str]:
        func = _function_of(func)
        if func is None or not (getattr(func, "__module__", "") or "").startswith(self.prefix):
            return {}
        key = id(func)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}  # a call cycle ends here
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
        except (OSError, TypeError, SyntaxError, IndexError):
            return {}
        names = _local_imports(tree)
        found: dict[type, str] = {}
        self._visit(tree, func, names, (), found)
        self.memo[key] = found
        return found

    def _visit(
        self,
        node: ast.AST,
        func: Any,
        names: dict[str, tuple[str, str]],
        caught: tuple[type, ...],
        found: dict[type, str],
    ) -> None:
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            inner = caught + tuple(self._handled(node, func, names))
            for child in node.body:
                self._visit(child, func, names, inner, found)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                self._visit(child, func, names, caught, found)
            return
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            cls = _resolve(exc, func, names)
            if inspect.isclass(cls) and issubclass(cls, UserError) and not _caught(cls, caught):
                found.setdefault(cls, func.__qualname__)
        if isinstance(node, ast.Call):
            callee = _resolve(node.func, func, names)
            is_class = inspect.isclass(callee)
            callees = constructor_parts(callee, self.prefix) if is_class else [callee]
            for part in callees:
                if part is None or _function_of(part) is _function_of(func):
                    continue
                for cls, via in self.raises(part).items():
                    if not _caught(cls, caught):
                        found.setdefault(cls, f"{func.__qualname__} > {via}")
        for child in ast.iter_child_nodes(node):
            self._visit(child, func, names, caught, found)

    @staticmethod
    def _handled(node: ast.Try, func: Any, names: dict[str, tuple[str, str]]) -> list[type]:
        """Exception classes the handlers of ``node`` catch and do not raise again."""
        out: list[type] = []
        for h in node.handlers:
            if any(isinstance(n, ast.Raise) for n in ast.walk(h)):
                continue  # re-raised or turned into another error (found as a raise)
            kinds = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            for k in kinds:
                cls = BaseException if k is None else _resolve(k, func, names)
                if inspect.isclass(cls) and issubclass(cls, BaseException):
                    out.append(cls)
        return out


def _function_of(obj: Any) -> Any:
    obj = getattr(obj, "__func__", obj)  # bound, class and static methods
    obj = inspect.unwrap(obj) if callable(obj) else obj
    return obj if inspect.isfunction(obj) else None


def constructor_parts(cls: type, prefix: str = "sam2elnet") -> list[Any]:
    """The functions of modules under ``prefix`` that run when ``cls(...)`` makes an object: the
    ``__init__`` and ``__post_init__`` (a dataclass's generated ``__init__`` calls it) the class
    has or inherits; generated and outside ones (pydantic's) are not read."""
    parts = []
    for hook in ("__init__", "__post_init__"):
        raw = next((k.__dict__[hook] for k in cls.__mro__ if hook in k.__dict__), None)
        func = _function_of(raw)
        if func is not None and (func.__module__ or "").startswith(prefix):
            parts.append(func)
    return parts


def _owner(func: Any) -> type | None:
    """The class that defines the method ``func`` (from its ``__qualname__``), None for a plain
    or nested function."""
    *outer, _name = func.__qualname__.split(".")
    if not outer or "<locals>" in outer:
        return None
    obj = func.__globals__.get(outer[0])
    for part in outer[1:]:
        obj = getattr(obj, part, None)
    return obj if inspect.isclass(obj) else None


def _caught(cls: type, caught: tuple[type, ...]) -> bool:
    return any(issubclass(cls, c) for c in caught)


def _local_imports(tree: ast.AST) -> dict[str, tuple[str, str]]:
    """Names a function body imports itself (``from sam2elnet.x import y``)."""
    out = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            for a in n.names:
                out[a.asname or a.name] = (n.module, a.name)
    return out


def _resolve(expr: ast.AST, func: Any, names: dict[str, tuple[str, str]]) -> Any:
    """The object a name or dotted name in ``func`` stands for (None when unknown)."""
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, func, names)
        return None if base is None else getattr(base, expr.attr, None)
    if not isinstance(expr, ast.Name):
        return None
    if expr.id in ("self", "cls") and func.__code__.co_varnames[:1] == (expr.id,):
        return _owner(func)  # self.method(...) / cls.method(...): the defining class's method
    if expr.id in names:
        module, attr = names[expr.id]
        try:
            return getattr(importlib.import_module(module), attr, None)
        except ImportError:
            return None
    return func.__globals__.get(expr.id, getattr(builtins, expr.id, None))


def raises_section(doc: str | None) -> list[str] | None:
    """Exception names of a docstring's Google-style ``Raises:`` section (``A, B: why``), or
    None without one."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if "Raises:" not in [ln.strip() for ln in lines]:
        return None
    start = [ln.strip() for ln in lines].index("Raises:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    names: list[str] = []
    entry = None
    for ln in lines[start + 1 :]:
        if not ln.strip():
            continue
        depth = len(ln) - len(ln.lstrip())
        if depth <= indent:
            break
        entry = depth if entry is None else entry
        head = ln.strip().split(":", 1)[0] if depth == entry and ":" in ln else ""
        names += [n.strip().rsplit(".", 1)[-1].strip("`~") for n in head.split(",") if n.strip()]
    return names


def _face_members(kind: Callable[[Any], bool]) -> dict[str, Any]:
    """``package.name`` -> object, for the names of the subpackages' ``__all__`` that ``kind``
    accepts (``inspect.isfunction`` / ``inspect.isclass``)."""
    found = {}
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in module.__all__:
            obj = getattr(module, name)
            if kind(obj):
                found[f"{pkg}.{name}"] = obj
    return found


def public_functions() -> dict[str, Callable[..., Any]]:
    found = _face_members(inspect.isfunction)
    for dotted in EXTRA:
        module, name = dotted.rsplit(".", 1)
        found[dotted] = getattr(importlib.import_module(module), name)
    return found


def public_classes() -> dict[str, type]:
    """``package.Class`` -> class, for the classes of the subpackages' ``__all__``."""
    return _face_members(inspect.isclass)


def public_methods() -> dict[str, Callable[..., Any]]:
    """``package.Class.method`` -> function, for the classes of the subpackages' ``__all__``.

    Left out, each because a user does not call it as a documented method: names starting with
    ``_`` (private helpers and dunders: a constructor's errors are the class's, documented with
    it and checked by :func:`public_constructors`); properties (read as attributes); pydantic
    validators and serializers (run by pydantic while a model is made, their errors surface as
    ``ValidationError``); anything defined outside ``sam2elnet`` (pydantic's ``model_dump``,
    ``torch.nn.Module.forward`` ...).
    """
    found: dict[str, Callable[..., Any]] = {}
    seen: set[int] = set()
    for name, cls in public_classes().items():
        for klass in cls.__mro__:
            if not (klass.__module__ or "").startswith("sam2elnet"):
                continue
            hooks = _pydantic_hooks(klass)
            for attr, raw in vars(klass).items():
                if attr.startswith("_") or attr in hooks or isinstance(raw, property):
                    continue
                func = _function_of(raw)
                if func is None or id(func) in seen:
                    continue
                seen.add(id(func))
                found[f"{name}.{attr}"] = func
    return found


def public_constructors() -> dict[str, tuple[type, Any]]:
    """``package.Class.__init__`` (or ``.__post_init__``) -> (class, function), for the classes
    of the subpackages' ``__all__`` (:func:`constructor_parts`: pydantic models and plain
    dataclasses have none to read; their errors are pydantic's ``ValidationError``)."""
    return {
        f"{name}.{func.__name__}": (cls, func)
        for name, cls in public_classes().items()
        for func in constructor_parts(cls)
    }


def _pydantic_hooks(cls: type) -> set[str]:
    """Names of the validator / serializer functions of a pydantic model class (none otherwise)."""
    infos = getattr(cls, "__pydantic_decorators__", None)
    if infos is None:
        return set()
    kinds = ("validators", "field_validators", "root_validators", "field_serializers")
    kinds += ("model_serializers", "model_validators", "computed_fields")
    return {n for kind in kinds for n in getattr(infos, kind, {})}


def undocumented(
    name: str, func: Any, finder: RaiseFinder, docs: list[str | None] | None = None
) -> list[str]:
    """Problems of one function: errors it can raise that no Raises section of ``docs`` (its own
    docstring when None; a constructor's: the class docstring and ``__init__``'s) names."""
    can = finder.raises(func)
    if not can:
        return []
    sections = [raises_section(d) for d in (docs if docs is not None else [func.__doc__])]
    named = None if all(s is None for s in sections) else [n for s in sections for n in s or []]
    if named is None:
        return [f"{name}: no 'Raises:' section; it can raise {_list(can)}"]
    missing = {c: v for c, v in can.items() if not {k.__name__ for k in c.__mro__} & set(named)}
    return [f"{name}: its Raises section does not name {_list(missing)}"] if missing else []


def _list(errors: dict[type, str]) -> str:
    return "; ".join(f"{c.__name__} (via {v})" for c, v in sorted(errors.items(), key=str))


def test_public_functions_document_the_user_errors_they_raise() -> None:
    finder = RaiseFinder()
    problems = [p for n, f in public_functions().items() for p in undocumented(n, f, finder)]
    assert not problems, "add what raises it and when:\n" + "\n".join(problems)


def test_public_methods_document_the_user_errors_they_raise() -> None:
    finder = RaiseFinder()
    problems = [p for n, f in public_methods().items() for p in undocumented(n, f, finder)]
    assert not problems, "add what raises it and when:\n" + "\n".join(problems)


def test_public_constructors_document_the_user_errors_they_raise() -> None:
    """A constructor's errors are named in the class docstring's Raises section or in
    ``__init__``'s (either one, or both together)."""
    finder = RaiseFinder()
    problems = [
        p
        for name, (cls, func) in public_constructors().items()
        for p in undocumented(name, func, finder, [cls.__doc__, func.__doc__])
    ]
    assert not problems, "add what raises it and when (class docstring):\n" + "\n".join(problems)


def test_the_public_constructors_are_read() -> None:
    """Own and inherited ``sam2elnet`` constructors are read; generated and pydantic ones are
    not."""
    ctors = public_constructors()
    assert "sam2elnet.engine.Predictor.__init__" in ctors
    assert "sam2elnet.engine.RayExecutor.__init__" in ctors
    assert not [n for n in ctors if n.startswith("sam2elnet.engine.TrainConfig.")]  # pydantic


def test_the_public_methods_are_read() -> None:
    """Class, static and regular methods are read; private names, properties and pydantic
    validators are not."""
    methods = public_methods()
    assert "sam2elnet.engine.Predictor.from_file" in methods  # classmethod
    assert "sam2elnet.engine.Predictor.predict" in methods  # regular method
    assert not [n for n in methods if n.rsplit(".", 1)[-1].startswith("_")]
    from sam2elnet.config import TrainConfig

    assert "_none_weights" in _pydantic_hooks(TrainConfig)  # a field validator
    assert "sam2elnet.engine.TrainConfig.model_dump" not in methods  # pydantic's own


def test_the_public_surface_is_read() -> None:
    funcs = public_functions()
    for name in ("sam2elnet.export.export_labels", "sam2elnet.pipeline.scene_job"):
        assert name in funcs
    assert "sam2elnet.engine.train.train" in funcs


_FAKE = '''
from sam2elnet.errors import DataError, UserError


def helper(x):
    if x < 0:
        raise DataError("negative")


class Opened:
    def __init__(self, path):
        raise UserError("missing", path)


def through_call(x):
    """Calls a helper that raises."""
    helper(x)


def documented(x):
    """Calls it too.

    Raises:
        UserError: x is negative.
    """
    helper(x)


def caught(x):
    """No Raises needed."""
    try:
        helper(x)
    except Exception:
        return None


def reraised(x):
    """Catches and raises again."""
    try:
        helper(x)
    except DataError:
        raise


def constructs(p):
    """Builds an object whose constructor raises."""
    return Opened(p)


class Reader:
    """Reads.

    Raises:
        DataError: x is negative.
    """

    def __init__(self, x):
        self._check(x)

    def _check(self, x):
        helper(x)

    def read(self, x):
        """Checks again through self."""
        self._check(x)

    @classmethod
    def make(cls, x):
        """Builds one through cls."""
        return cls(x)


class Child(Reader):
    """Inherits the constructor."""
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "fake_raises_mod.py").write_text(_FAKE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_raises_mod", None)
    yield importlib.import_module("fake_raises_mod")
    sys.modules.pop("fake_raises_mod", None)


def test_finder_follows_calls_and_handlers(fake: Any) -> None:
    finder = RaiseFinder(prefix="fake_raises_mod")
    from sam2elnet.errors import DataError

    assert finder.raises(fake.through_call) == {DataError: "through_call > helper"}
    assert finder.raises(fake.caught) == {}
    assert list(finder.raises(fake.reraised)) == [DataError]
    assert list(finder.raises(fake.constructs)) == [UserError]


def test_finder_follows_self_cls_and_constructors(fake: Any) -> None:
    finder = RaiseFinder(prefix="fake_raises_mod")
    from sam2elnet.errors import DataError

    chain = "Reader.__init__ > Reader._check > helper"
    assert finder.raises(fake.Reader.__init__) == {DataError: chain}
    assert finder.raises(fake.Reader.read) == {DataError: "Reader.read > Reader._check > helper"}
    assert finder.raises(fake.Reader.make) == {DataError: f"Reader.make > {chain}"}
    assert constructor_parts(fake.Child, "fake_raises_mod") == [fake.Reader.__init__]
    docs = [fake.Reader.__doc__, fake.Reader.__init__.__doc__]  # the class docstring names it
    assert undocumented("Reader.__init__", fake.Reader.__init__, finder, docs) == []
    assert undocumented("Child.__init__", fake.Reader.__init__, finder, [fake.Child.__doc__]) == [
        f"Child.__init__: no 'Raises:' section; it can raise DataError (via {chain})"
    ]


def test_missing_sections_are_reported(fake: Any) -> None:
    finder = RaiseFinder(prefix="fake_raises_mod")
    assert undocumented("through_call", fake.through_call, finder) == [
        "through_call: no 'Raises:' section; it can raise DataError (via through_call > helper)"
    ]
    assert undocumented("documented", fake.documented, finder) == []  # UserError covers it
    assert undocumented("caught", fake.caught, finder) == []


def test_raises_section_names() -> None:
    doc = """Do it.

    Raises:
        UserError, DataError: bad input: a file
            that: is missing.
        sam2elnet.errors.CheckpointError: a bad model.

    Returns:
        Nothing.
    """
    assert raises_section(doc) == ["UserError", "DataError", "CheckpointError"]
    assert raises_section("Raises UserError when missing.") is None
