"""The files of an ``elnet scene`` job: the scenes of a folder, each scene's coarse label and
its outputs, checked before the model loads.

:func:`list_scenes` lists a folder's scenes (:data:`~sam2elnet.data.naming.SCENE_SUFFIXES`),
:func:`match_coarse` finds each scene's coarse label in a label folder by stem,
:func:`shared_coarse` reads one vector file given for several scenes once,
:func:`scene_outputs` names a scene's outputs in a batch run, and :func:`check_scene_outputs`
refuses outputs that are one file or an input. Used by :mod:`sam2elnet.pipeline.scenes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import (
    PROB_SUFFIX,
    SCENE_SUFFIXES,
    TILES_SUFFIX,
    VECTOR_SUFFIXES,
    scene_companion,
)
from sam2elnet.errors import DataError, UserError

__all__ = ["check_scene_outputs", "list_scenes", "match_coarse", "scene_outputs", "shared_coarse"]


def list_scenes(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """The scenes of ``inputs``: a folder's scene files (sorted), one file, or a list as given.

    Raises:
        DataError: the path does not exist, or the folder holds no scene.
    """
    if isinstance(inputs, (str, Path)):
        p = Path(inputs)
        if not p.exists():
            raise DataError("scene folder or file does not exist; check the path", p)
        if p.is_dir():
            files = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SCENE_SUFFIXES
            )
            if not files:
                raise DataError(f"no scenes ({', '.join(SCENE_SUFFIXES)}) in the folder", p)
            return files
        return [p]
    return [Path(x) for x in inputs]


def match_coarse(coarse: str | Path | None, scene: Path) -> Path | None:
    """Coarse label for ``scene``: a file is used as is; in a folder, the file with the same stem."""
    if coarse is None:
        return None
    c = Path(coarse)
    if not c.is_dir():
        return c
    for suf in (*SCENE_SUFFIXES, *VECTOR_SUFFIXES, ".png"):
        cand = c / f"{scene.stem}{suf}"
        if cand.exists():
            return cand
    raise DataError(f"no coarse label named {scene.stem}.* in the label folder", c)


def shared_coarse(coarse: str | Path | None, scenes: list[Path], layer: str | None = None) -> Any:
    """One vector file given for a folder of several scenes (``scene --labels slicks.gpkg``),
    read once (:class:`~sam2elnet.data.vector_shared.SharedVector`): a scene it does not touch is
    enhanced from an empty coarse label with one warning per run, as ``enhance`` treats one file
    for several images. One scene's vector file (and with ``layer``, ``scene --layer``, that
    layer) is read once too, as its own file (placed as a file of its own: no feature on the
    scene an error): ``scene_job`` checks it against the scene before the model loads
    (:func:`~sam2elnet.engine.scene_inputs.precheck_coarse`) and the scene is predicted from
    the same frame. One raster file for several scenes: a
    :class:`~sam2elnet.data.vector_shared.SharedRaster` (a scene outside its footprint is
    predicted without a coarse label, as without ``--labels``, with that same one warning per
    run, not refused as one scene's own raster label is). None otherwise (a label folder, one scene's raster). Already
    read: as it is.

    Raises:
        DataError: the file cannot be read (once, not per scene), or has no layer ``layer``.
        UserError: ``layer`` with raster labels or a folder of labels; a file that can be
            placed on none of the scenes (:func:`~sam2elnet.data.vector_shared.check_placeable`;
            on some: the others are skipped, each with the reason).
    """
    from sam2elnet.data.vector import is_vector_path
    from sam2elnet.data.vector_shared import (
        SharedRaster,
        SharedVector,
        check_placeable,
        share_raster,
        share_vectors,
    )

    if isinstance(coarse, (SharedVector, SharedRaster)) or coarse is None:
        return coarse
    if layer is not None and Path(coarse).is_dir():
        raise UserError(
            f"--layer {layer!r} names the layer of one --labels file; with a folder of labels "
            "give one-layer files (QGIS: Export > Save Features As), or drop --layer",
            Path(coarse),
        )
    if layer is None and Path(coarse).is_dir():
        return None
    if layer is None and not is_vector_path(coarse):  # one raster for a folder: regional
        return share_raster(coarse, scenes)
    if (
        layer is None and len(scenes) < 2
    ):  # one scene's own file (a missing one: its reader's words)
        if not Path(coarse).is_file():
            return None
        from sam2elnet.data.vector import read_vector

        return SharedVector(Path(coarse), read_vector(coarse), many=False).serving(scenes, "scene")
    uses = [coarse] * min(len(scenes), 2)  # one scene: its own file, read for its layer
    sv = share_vectors(uses, strict=True, layer=layer).get(Path(coarse))
    if sv is None:
        return None
    sv = sv.serving(scenes, "scene")  # the refusal and each skipped scene in scene's words
    if sv.many:  # scenes without georeference: by name, or one error now
        check_placeable(sv, scenes)
    return sv


def scene_outputs(out_dir: Path, scene: Path, prob: bool, quality: bool) -> dict[str, Path | None]:
    """Output paths of one scene in a batch run."""
    label = out_dir / f"{scene.stem}.tif"
    return {
        "label": label,
        "prob": scene_companion(label, PROB_SUFFIX) if prob else None,
        "quality": scene_companion(label, TILES_SUFFIX) if quality else None,
    }


_OUTPUT_NAMES = {"label": "label", "prob": "probability map", "quality": "quality layer"}


def check_scene_outputs(
    image: str | Path,
    out: str | Path,
    labels: str | Path | None = None,
    prob: bool = False,
    quality: bool = False,
) -> None:
    """Refuse ``elnet scene`` outputs that are one file or an input, before the model loads.

    One scene (``image`` a file): the label GeoTIFF ``out`` and its ``<out stem>_prob.tif`` /
    ``<out stem>_tiles.gpkg`` (``prob`` / ``quality``) must be three files (a symlink or hard link
    between them is refused). A folder of scenes: ``out`` must not be the ``image`` folder nor a
    ``labels`` folder (the labels ``<scene>.tif`` would replace inputs of the same name), no
    output may be a ``labels`` file, and no two scenes may write one file (``a.tif`` and
    ``a.tiff`` both write ``a.tif``; with ``prob``, scene ``a_prob.tif`` is scene ``a.tif``'s
    probability map), and ``out`` must not be named like a GeoTIFF (``oil.tif``: the single-scene
    form, which made a folder of that name; an existing folder of that name is taken). That an
    output is not the scene or ``labels`` file of a single scene is
    :func:`~sam2elnet.utils.paths.check_output`'s job (the CLI calls it first); the output names
    themselves (a ``.tif`` label, a ``.gpkg`` layer) are
    :func:`~sam2elnet.engine.scene_checks.check_scene_paths`'s (``scene_job`` calls both). It
    lives here, not in :mod:`~sam2elnet.engine.scene_checks`, because a folder's outputs follow
    from :func:`list_scenes` and :func:`scene_outputs`.

    Raises:
        UserError: one line naming the output and the file it collides with, and what to do.
    """
    from sam2elnet.utils.paths import check_distinct_outputs, check_not_input, check_out_folder

    src, dst = Path(image), Path(out)
    if not src.is_dir():
        outs: list[tuple[str, Path | None]] = [("--out", dst)]
        for what, suffix, on in (
            ("probability map", PROB_SUFFIX, prob),
            ("per-window quality layer", TILES_SUFFIX, quality),
        ):
            if on:
                outs.append((f"--out {dst}: its {what}", scene_companion(dst, suffix)))
        check_distinct_outputs(outs, advice="Choose another --out path")
        return
    if dst.suffix.lower() in (".tif", ".tiff") and not dst.is_dir():
        # the single-scene form: a folder named oil.tif, which GIS tools take for a raster
        raise UserError(
            f"--out {dst}: --image {src} is a folder of scenes, so --out is the folder their "
            f"labels go into (<scene>.tif each), not a GeoTIFF; give a folder path such as "
            f"{dst.with_suffix('')}"
        )
    if dst.is_dir() and dst.resolve() == src.resolve():
        raise UserError(
            f"--out {dst}: is the --image folder; the labels (<scene>.tif) would be written among "
            "the input scenes and could replace them. Choose another --out folder"
        )
    lab = Path(labels) if labels is not None else None
    folders = [("the coarse labels read with --labels", lab)] if lab and lab.is_dir() else []
    check_out_folder(dst, [("", "its labels (<scene>.tif)")], [], "scene", folders=folders)
    label_file = [lab] if lab is not None and lab.is_file() else []
    outputs: list[tuple[str, Path | None]] = []
    for scene in list_scenes(src):
        for kind, p in scene_outputs(dst, scene, prob, quality).items():
            name = f"scene {scene.name}'s {_OUTPUT_NAMES[kind]}"
            outputs.append((name, p))
            if label_file and p is not None:
                check_not_input(p, label_file, what=f"--out {dst}: {name} {p}")
    check_distinct_outputs(outputs, advice="Rename one of the two scenes or move it elsewhere")
