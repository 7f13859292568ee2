"""The layer rule of docs/architecture.md, checked on the source: no import cycles, imports run downhill.

The import graph is built with :mod:`ast` from every ``.py`` file under ``src/sam2elnet``, counting
imports inside functions too (lazy imports keep ``elnet --help`` fast, but they must not hide a
loop or an arrow running back up). Nothing is imported or executed.

Layer order, written once (lowest first; a module may import its own package and any lower layer):

* ``sam2elnet`` (the package root), ``errors``, ``utils``, ``config``, ``config_sources``,
  ``options``, ``option_values``, ``option_checks`` - the ground floor;
* ``data`` - files in, arrays out (readers, writers, naming, the run-folder contract);
* ``model`` - the network, no file formats;
* ``engine`` and ``export`` - one floor, two independent rooms that never import each other:
  ``engine`` runs models (training, inference, scenes, evaluation); ``export`` turns label files
  into GIS / COCO / Label Studio formats. Export needs label rasters and the run folder's
  ``quality.csv``, both defined in ``data``, and never a model, so it stands on ``data`` beside
  the engine instead of above it (``elnet export`` works on labels made by any tool);
* ``pipeline`` - job front doors and whole workflows wiring engine and export together;
* ``cli`` - the thin command layer (with ``sam2elnet.__main__``: ``python -m sam2elnet``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sam2elnet"

LAYERS: list[set[str]] = [
    {
        "sam2elnet",
        "sam2elnet.errors",
        "sam2elnet.utils",
        "sam2elnet.config",
        "sam2elnet.config_sources",
        "sam2elnet.options",
        "sam2elnet.option_values",
        "sam2elnet.option_checks",
    },
    {"sam2elnet.data"},
    {"sam2elnet.model"},
    {"sam2elnet.engine", "sam2elnet.export"},
    {"sam2elnet.pipeline"},
    {"sam2elnet.cli"},
]

OUTSIDERS = {"sam2elnet.__main__": "sam2elnet.cli"}
"""Modules that belong to a room although they live outside its folder (``python -m sam2elnet``)."""


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _from_module(name: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of ``from X import ...`` in module ``name`` (relative imports
    resolved against ``name``'s package; ``is_pkg``: ``name`` is a package's __init__)."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules imported anywhere in ``path`` (module level, functions, methods)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _from_module(name, is_pkg, node)
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            if t == PACKAGE or t.startswith(PACKAGE + "."):
                while t not in known and "." in t:  # ``import pkg.mod.attr`` -> pkg.mod
                    t = t.rsplit(".", 1)[0]
                if t != name:
                    out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _private_imports() -> list[str]:
    """``module: from other import _name`` for every private name a module takes from another
    package module (absolute or relative imports, anywhere in the file)."""
    found = []
    for name, path in _modules().items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            mod = _from_module(name, is_pkg, node)
            if mod != name and (mod == PACKAGE or mod.startswith(PACKAGE + ".")):
                found += [
                    f"{name}: from {mod} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    """A helper used by another module is public there (a name and a docstring), not a
    ``_private`` name reached across modules."""
    assert _private_imports() == []


def _layer_of(module: str) -> tuple[int, str]:
    """(layer index, room) of a module: the longest LAYERS entry that is a prefix of it."""
    best: tuple[int, str] | None = None
    module = OUTSIDERS.get(module, module)
    for i, rooms in enumerate(LAYERS):
        for room in rooms:
            if module == room or module.startswith(room + "."):
                if best is None or len(room) > len(best[1]):
                    best = (i, room)
    assert best is not None, f"{module} is in no layer; add it to LAYERS"
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_graph_sees_function_level_imports() -> None:
    """The graph is not blind to lazy imports (guards the test itself)."""
    g = _graph()
    # engine.scene_coarse imports data.vector only inside CoarseSource.__init__
    assert "sam2elnet.data.vector" in g["sam2elnet.engine.scene_coarse"]
    # cli commands import the library lazily
    assert "sam2elnet.pipeline.scenes" in g["sam2elnet.cli.geo_cmd"]


def test_cycle_finder_finds_a_planted_loop() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (counting function-level imports):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_imports_run_downhill() -> None:
    bad = []
    for mod, targets in sorted(_graph().items()):
        layer, room = _layer_of(mod)
        for t in sorted(targets):
            t_layer, t_room = _layer_of(t)
            if t_layer > layer or (t_layer == layer and t_room != room and layer > 0):
                bad.append(f"{mod} -> {t}")
    assert not bad, (
        "imports from a lower layer to a higher one (or between engine and export):\n"
        + ("\n".join(bad))
    )


@pytest.mark.parametrize("room", sorted(set().union(*LAYERS)))
def test_every_room_exists(room: str) -> None:
    """LAYERS names real packages/modules (a renamed room must be renamed here too)."""
    assert room in _modules()


@pytest.mark.parametrize("package", ["sam2elnet.engine", "sam2elnet.export", "sam2elnet.pipeline"])
def test_package_face_names_resolve(package: str) -> None:
    """Every name of a package face resolves to an object of that name in the package."""
    import importlib

    pkg = importlib.import_module(package)
    assert pkg.__all__
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        assert getattr(obj, "__name__", name) == name or not callable(obj)
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018


MAX_LINES = 500
"""A module longer than this mixes jobs, unless it holds one concept (listed below, with why)."""

LARGE_MODULES: dict[str, str] = {}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_over_max_lines_unless_listed() -> None:
    mods = _modules()
    over = {name: _lines(p) for name, p in mods.items() if _lines(p) > MAX_LINES}
    unlisted = sorted(f"{m} ({n} lines)" for m, n in over.items() if m not in LARGE_MODULES)
    assert not unlisted, (
        f"modules over {MAX_LINES} lines: split them by concept, or list them in LARGE_MODULES "
        "with the one concept they hold:\n" + "\n".join(unlisted)
    )


def test_large_module_list_is_current() -> None:
    """Every listed module exists, is still over the limit and has a docstring (no stale entries;
    the list is empty today, so this guards future entries)."""
    mods = _modules()
    for module in sorted(LARGE_MODULES):
        assert module in mods, f"{module} no longer exists; remove it from LARGE_MODULES"
        assert _lines(mods[module]) > MAX_LINES, (
            f"{module} is short now; remove it from LARGE_MODULES"
        )
        tree = ast.parse(mods[module].read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{module} needs a docstring saying what it holds"


def test_size_check_sees_a_long_module(tmp_path: Path) -> None:
    """The line counter counts lines (guards the size test itself)."""
    p = tmp_path / "long.py"
    p.write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    assert _lines(p) == MAX_LINES + 1


def _doc() -> str:
    return (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")


def _section(doc: str, heading: str, page: str = "docs/architecture.md") -> str:
    """The text of ``doc`` from the line starting ``heading`` to the next ``## `` heading (or the end)."""
    start = doc.find(f"\n{heading}")
    assert start >= 0, f"{page} has no heading {heading!r} (renamed? the checks below read it)"
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end >= 0 else len(doc)]


def _map_block(doc: str) -> str:
    """The fenced tree of docs/architecture.md's section "Where each concern lives"."""
    section = _section(doc, "## Where each concern lives")
    fences = section.split("```")
    assert len(fences) >= 3, "docs/architecture.md's module map is no fenced block any more"
    return fences[1]


def _map_entries(block: str) -> set[str]:
    """Paths (relative to ``src/sam2elnet``) the module-map tree lists, folders read from indentation.

    A tree line starts at most 8 columns in (deeper lines continue a description); its first word
    is a ``folder/`` or a ``file.py``, and a two-column line (the ``cli/`` block) has a second
    ``file.py`` after two spaces. ``data/vector.py`` and ``export/vector.py`` are two entries.
    """
    import re

    folders: list[tuple[int, str]] = []
    found: set[str] = set()
    for line in block.splitlines():
        m = re.match(r"( *)(\S+)", line)
        if not m or len(m.group(1)) > 8:
            continue
        indent, word = len(m.group(1)), m.group(2)
        if word == f"src/{PACKAGE}/":
            folders = []
            continue
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if word.endswith("/"):
            folders.append((indent, word[:-1]))
            continue
        prefix = "".join(f"{name}/" for _, name in folders)
        rest = line[indent + len(word) :]
        for name in [word, *re.findall(r"(?<=\s\s)(\w+\.py)(?=\s|$)", rest)]:
            if name.endswith(".py"):
                found.add(prefix + name)
    return found


def _map_mismatch(block: str, files: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(modules the map lacks, map entries that are no file), as paths under ``src/sam2elnet``.

    ``files``: the modules to compare with (default: the package's real ones).
    """
    if files is None:
        files = {p.relative_to(SRC / PACKAGE).as_posix() for p in _modules().values()}
    listed = _map_entries(block)
    missing = sorted(f for f in files - listed if not f.endswith("__init__.py"))
    return missing, sorted(listed - files)


def test_module_map_names_every_module() -> None:
    """docs/architecture.md's module map has a line for every module, under its own folder."""
    missing, _ = _map_mismatch(_map_block(_doc()))
    assert not missing, "modules missing from the module map of docs/architecture.md:\n" + (
        "\n".join(missing)
    )


def test_module_map_lists_no_stale_file() -> None:
    """Every file in the module map is a real module of that folder (no renamed leftovers)."""
    _, stale = _map_mismatch(_map_block(_doc()))
    assert not stale, f"the module map names files that do not exist: {stale}"


_MADE_UP_MAP = """
src/sam2elnet/
  data/
    vector.py        vector labels, rasterised
                     (a description line, deeper: other.py is no entry)
  engine/
    evaluate.py      scores
    metrics/
      pixel.py       IoU
  export/
    vector.py        polygons
  cli/
    main.py          app      train.py   train
"""
_MADE_UP_FILES = {
    "data/vector.py",
    "engine/evaluate.py",
    "engine/metrics/pixel.py",
    "export/vector.py",
    "cli/main.py",
    "cli/train.py",
}


def test_module_map_check_catches_a_missing_or_misplaced_line() -> None:
    """Guards on a made-up map: dropping data/vector.py's line is caught although export/vector.py
    shares its name, and a renamed or out-dented line is both missing and stale."""
    assert _map_mismatch(_MADE_UP_MAP, _MADE_UP_FILES) == ([], [])
    dropped = _MADE_UP_MAP.replace("    vector.py        vector labels, rasterised\n", "")
    assert _map_mismatch(dropped, _MADE_UP_FILES) == (["data/vector.py"], [])
    renamed = _MADE_UP_MAP.replace("evaluate.py ", "evaluated.py")
    assert _map_mismatch(renamed, _MADE_UP_FILES) == (
        ["engine/evaluate.py"],
        ["engine/evaluated.py"],
    )
    outdented = _MADE_UP_MAP.replace("\n      pixel.py", "\n    pixel.py")
    assert _map_mismatch(outdented, _MADE_UP_FILES) == (
        ["engine/metrics/pixel.py"],
        ["engine/pixel.py"],
    )
    one_column = _MADE_UP_MAP.replace("      train.py   train", "")
    assert _map_mismatch(one_column, _MADE_UP_FILES) == (["cli/train.py"], [])


def test_doc_sections_are_found_or_named() -> None:
    """Guard: a missing heading fails with the heading's name, not a bare ValueError."""
    doc = "# Page\n\n## Test layout\n\n`a.py`\n\n## Next\n"
    section = _section(doc, "## Test layout")
    assert "`a.py`" in section and "Next" not in section
    with pytest.raises(AssertionError, match="no heading '## Where each concern lives'"):
        _map_block(doc)


def _top_level_names(path: Path) -> set[str]:
    """Names a module defines or imports at its top level (functions, classes, assignments)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _unresolved(dotted: str, mods: dict[str, Path]) -> str | None:
    """Why ``sam2elnet.a.b[.Name[.member]]`` names nothing real, or None when it does."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module in mods:
            break
    rest = parts[cut:]
    if not rest:
        return None
    if len(rest) > 2:
        return f"no module {'.'.join(parts[: cut + 1])}"
    if rest[0] in _top_level_names(mods[module]):
        return None
    if mods[module].name == "__init__.py" and rest[0] in dir(importlib.import_module(module)):
        return None  # a lazy package face's name
    return f"{module} has no {rest[0]}"


_DOTTED = re.compile(r"\bsam2elnet(?:\.[A-Za-z_]\w*)+")
"""A full dotted name in prose: ``sam2elnet.engine.eval_result.EvaluationResult``."""
_SHORT = re.compile(r"`((?:cli|data|engine|export|model|pipeline|utils)(?:\.[A-Za-z_]\w*){2,})")
"""A dotted name without the package in a docs code span: ``engine.folder_inputs.split_samples``
(two parts at least after the sub-package: ``data.image`` is a Label Studio task key)."""
_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc):`~?(sam2elnet(?:\.[A-Za-z_]\w*)+)`")
"""A Sphinx cross-reference in a docstring: ``:func:`~sam2elnet.data.validity.dataset_valid```."""


def test_doc_names_only_real_modules() -> None:
    """Every ``sam2elnet.x.y`` (or backquoted ``engine.x.y``) docs/*.md and README.md name, and
    every ``:func:`sam2elnet.x.y``` a module docstring cites, exists (module, or a name in one)."""
    mods = _modules()
    named = sorted(set(_DOTTED.findall(_doc())))
    assert len(named) > 30  # the page names modules throughout, not only in the map
    pages = sorted((SRC.parent / "docs").glob("*.md")) + [SRC.parent / "README.md"]
    bad = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        names = set(_DOTTED.findall(text)) | {f"{PACKAGE}.{n}" for n in _SHORT.findall(text)}
        bad += [f"{page.name}: {n}: {why}" for n in sorted(names) if (why := _unresolved(n, mods))]
    for module, path in mods.items():
        names = set(_ROLE.findall(path.read_text(encoding="utf-8")))
        bad += [f"{module}: {n}: {why}" for n in sorted(names) if (why := _unresolved(n, mods))]
    assert not bad, "docs or docstrings name what does not exist:\n" + "\n".join(bad)


def test_doc_name_check_catches_a_wrong_name() -> None:
    """The check above fails on a module or a name that is not there (guards the test)."""
    mods = _modules()
    assert _unresolved("sam2elnet.engine.no_such_module", mods)
    assert _unresolved("sam2elnet.data.windowed.no_such_name", mods)
    assert _unresolved("sam2elnet.data.runfolder.read_quality_table", mods) is None
    assert _unresolved("sam2elnet.engine.Predictor", mods) is None
    assert _ROLE.findall(":func:`~sam2elnet.data.images.dataset_valid`") == [
        "sam2elnet.data.images.dataset_valid"
    ]
    assert _unresolved("sam2elnet.data.images.dataset_valid", mods)  # moved to data.validity
    assert _SHORT.findall("`engine.folder_inputs.split_samples`, `data.image`") == [
        "engine.folder_inputs.split_samples"
    ]


FILE_FORMAT_LIBRARIES = {
    "rasterio", "osgeo", "cv2", "PIL", "imageio", "tifffile", "fiona", "pyogrio", "geopandas",
    "shapely",
}  # fmt: skip
"""Libraries that read image, raster or vector files: ``data`` and above use them, ``model`` not."""


def _third_party_imports(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports (module level and inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_model_reads_no_image_or_label_file_format() -> None:
    """docs/architecture.md: ``model`` never reads an image or label file (tensors in and out)."""
    bad = {
        name: sorted(_third_party_imports(path.read_text(encoding="utf-8")) & FILE_FORMAT_LIBRARIES)
        for name, path in _modules().items()
        if name == f"{PACKAGE}.model" or name.startswith(f"{PACKAGE}.model.")
    }
    assert not {k: v for k, v in bad.items() if v}


def test_file_format_check_sees_a_lazy_import() -> None:
    """Guard: an import inside a function is seen (a lazy reader would slip past otherwise)."""
    source = "def f():\n    from rasterio.windows import Window\n    import cv2\n"
    assert _third_party_imports(source) & FILE_FORMAT_LIBRARIES == {"rasterio", "cv2"}


def _test_layout_missing(doc: str, tests_dir: Path) -> list[str]:
    """Top-level files of ``tests/`` that the page's "Test layout" section does not name."""
    section = _section(doc, "## Test layout")
    return sorted(p.name for p in tests_dir.glob("*.py") if f"`{p.name}`" not in section)


def test_test_layout_names_every_top_level_test_file() -> None:
    """The cross-cutting tests and helpers in ``tests/`` itself are all named (a newcomer's list)."""
    assert not _test_layout_missing(_doc(), SRC.parent / "tests")


def test_test_layout_check_catches_an_unnamed_file(tmp_path: Path) -> None:
    """Guard on a made-up page: a file named only outside the section is reported."""
    doc = "# Tests\n\n## Test layout\n\n`test_a.py`\n\n## Other\n\n`test_b.py`\n"
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert _test_layout_missing(doc, tmp_path) == ["test_b.py"]


_TEST_MODULE_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:tests\.(?:\w+\.)*)?test_\w+", re.M)


def _cross_test_imports(tests_dir: Path) -> list[str]:
    """Test files that import another test module (``from test_x import ...``,
    ``from tests.engine.test_x import ...``), and every ``conftest.py`` but the top one."""
    bad = [
        str(p.relative_to(tests_dir))
        for p in sorted(tests_dir.rglob("*.py"))
        if _TEST_MODULE_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    return bad + [str(p.relative_to(tests_dir)) for p in tests_dir.rglob("*/conftest.py")]


def test_tests_take_shared_code_from_helpers_only() -> None:
    """docs/architecture.md "Test layout": shared test code lives in helpers_*.py or the one
    tests/conftest.py (a second conftest.py shadows the bare ``import conftest`` under xdist)."""
    assert not _cross_test_imports(SRC.parent / "tests")


def test_cross_test_import_check_catches_one(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "test_a.py").write_text("from tests.engine.test_b import f\n")
    (tmp_path / "test_c.py").write_text("import numpy\nfrom helpers_data import x\n")
    (tmp_path / "engine" / "conftest.py").write_text("")
    assert _cross_test_imports(tmp_path) == ["engine/test_a.py", "engine/conftest.py"]


def test_module_loggers_are_used() -> None:
    """A module that makes ``log = logging.getLogger(__name__)`` logs through it (no dead loggers)."""
    unused = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        made = any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "log" for t in n.targets)
            for n in tree.body
        )
        loads = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and n.id == "log"
            if isinstance(n.ctx, ast.Load)
        ]
        if made and not loads:
            unused.append(name)
    assert not unused, f"unused module logger (delete it): {unused}"


def test_config_names_only_what_it_defines() -> None:
    """``sam2elnet.config`` exports its own run configurations; the other commands' options are
    imported from their owner (sam2elnet.options / option_values / option_checks), not through it."""
    import inspect

    from sam2elnet import config

    for name in config.__all__:
        obj = getattr(config, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "sam2elnet.config", name


def test_the_package_imports_raster_io_from_its_owners() -> None:
    """``sam2elnet.data.raster`` is the public face of raster I/O for users; inside the package
    each name comes from the module that defines it (data.images / masks / writers / ...)."""
    src = Path(__file__).resolve().parents[1] / "src" / "sam2elnet"
    users = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.name != "raster.py" and "sam2elnet.data.raster import" in p.read_text()
    ]
    assert users == []
