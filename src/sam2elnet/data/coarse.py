"""Coarse-label simulator: turn an accurate mask into the kind of label a hurried annotator draws.

Real coarse labels (see the SOS polygons and the fixed-width road strips in the shared data) are
polygons with few vertices, shifted and bloated boundaries, missing thin parts and, for roads,
strips of one brush width along a roughly followed centre line. Simulating them from exact masks
lets label enhancement be trained and *measured* against ground truth.

Profiles (``degrade(mask, profile, severity, seed)``):

* training family (:data:`TRAIN_PROFILES`): ``polygon`` (Douglas-Peucker simplification, dilation,
  smooth boundary displacement), ``sloppy`` (displacement, dilation/erosion, dropped small and thin
  parts, spurious blobs), ``blocky`` (drawn on a coarse grid), ``blurred`` (blur-and-threshold
  boundary shift), ``shifted`` (whole-label translation with dilation/erosion), ``strip`` (fixed
  width strips along centre lines, for roads), ``wavy`` (the boundary alone pushed in and out by
  smooth random noise, the area kept), ``missed`` (whole objects left out, the rest exact) and
  ``mixed`` (one of :data:`MIXED_CHOICES` per label, strips
  too for line-like masks);
* held out (:data:`EVAL_ONLY_PROFILES`): ``freehand``, a hand-drawn outline around each object
  (close objects merged, small ones skipped, holes filled, wobbly and drawn slightly outside).
  Training refuses it (:func:`check_train_profile`), so enhancement measured on it measures
  generalisation to an unseen kind of coarse label, not fitting the simulator.

Every profile takes a ``severity`` in [0, 1]. All random numbers are drawn *before* severity
scales them, from one generator per operation, so for a fixed seed a higher severity applies the
same distortions with larger amplitude: the IoU to the input falls with severity in expectation
(and nearly always per seed). Severity 0 returns the input unchanged.

The mask operations themselves live in :mod:`sam2elnet.data.coarse_ops`; this module combines
them into profiles and runs them over a folder (:func:`degrade_folder`).
"""

from __future__ import annotations

import csv
import io
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2elnet.data.coarse_ops import (
    add_blobs,
    blockify,
    blur_threshold,
    centerline_width,
    displace,
    drop_objects,
    drop_parts,
    freehand_outline,
    iou,
    is_linear,
    morph,
    pixel_scale,
    simplify_polygons,
    smooth_field,
    strip,
    translate,
)
from sam2elnet.data.naming import GEO_SUFFIXES, drop_paired_images, image_files, mask_key
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.errors import DataError
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import EVAL_ONLY_PROFILES, TRAIN_PROFILES
from sam2elnet.options import DegradeOptions
from sam2elnet.utils.advice import none_of
from sam2elnet.utils.atomic import write_text_atomic

#: Every profile: the training family, then the held-out ones (the names are
#: :data:`sam2elnet.option_values.CoarseProfile`'s, for the CLI and the options models).
PROFILES = TRAIN_PROFILES + EVAL_ONLY_PROFILES


@dataclass
class CoarseResult:
    """A degraded mask, its IoU to the input and a readable list of what was applied."""

    mask: np.ndarray
    iou: float
    ops: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        m = np.asarray(self.mask)
        share = 100.0 * float(m.mean()) if m.size else 0.0
        return (
            f"CoarseResult(mask={m.dtype} {m.shape}, {share:.1f} % object, "
            f"iou={self.iou:.3f}, ops={self.ops!r})"
        )


# --------------------------------------------------------------------------- profiles
def _rngs(seed: int | np.random.Generator, n: int) -> list[np.random.Generator]:
    """Independent generators, one per operation, so ops do not shift each other's draws."""
    if isinstance(seed, np.random.Generator):
        return list(seed.spawn(n))
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 7919])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


#: How many generators a profile receives (``r[0]`` .. ``r[N_RNGS - 1]``); ``mixed`` uses the
#: last one to choose, so a profile ``mixed`` may draw uses only ``r[0]`` .. ``r[N_RNGS - 2]``.
N_RNGS = 8

Profile = Callable[[np.ndarray, float, list[np.random.Generator]], tuple[np.ndarray, list[str]]]
"""A profile: ``(mask, severity, generators) -> (coarse mask, readable ops)``; bool (H, W) in and
out, severity in (0, 1] (0 never reaches it), :data:`N_RNGS` generators."""


def _polygon(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    u_eps, u_rad = r[0].random(), r[1].random()
    dx = smooth_field(r[2], mask.shape, 64 * ref)
    dy = smooth_field(r[2], mask.shape, 64 * ref)
    rel_eps = s * (0.01 + 0.04 * u_eps)
    out = simplify_polygons(
        mask, rel_eps, min_eps=s * 2.0 * ref, max_eps=s * 8.0 * ref, min_hole=s * 0.003 * mask.size
    )
    rad = int(round(s * (1.0 + 5.0 * u_rad) * ref))
    out = morph(out, rad)
    amp = s * 3.0 * ref
    out = displace(out, dx, dy, amp)
    return out, [f"simplify(rel_eps={rel_eps:.3f})", f"dilate({rad})", f"displace({amp:.1f})"]


def _sloppy(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    h, w = mask.shape
    dx = smooth_field(r[0], mask.shape, 40 * ref)
    dy = smooth_field(r[0], mask.shape, 40 * ref)
    u_rad, u_thin = r[1].random(), r[2].random()
    blob_draws = r[3].random((3, 6))
    amp = s * 7.0 * ref
    out = displace(mask, dx, dy, amp)
    rad = int(round(s * (6.0 * u_rad - 1.5) * ref))
    out = morph(out, rad)
    min_area = s * 0.004 * h * w
    thin = int(round(s * u_thin * 2.5 * ref))
    out = drop_parts(out, min_area, thin)
    blobs = []
    for row in blob_draws:
        if row[0] < 0.6 * s:
            rad_b = (3.0 + 12.0 * row[3]) * ref * (0.4 + 0.6 * s)
            blobs.append(
                (row[1] * w, row[2] * h, rad_b, rad_b * (0.4 + 0.6 * row[4]), 180 * row[5])
            )
    out = add_blobs(out, blobs)
    ops = [f"displace({amp:.1f})", f"morph({rad})", f"drop(area<{min_area:.0f},thin={thin})"]
    return out, ops + [f"blobs({len(blobs)})"]


def _blocky(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    u_b, u_t, u_o = r[0].random(), r[1].random(), r[2].integers(0, 1 << 16, size=2)
    block = 1 + int(round(s * (6.0 + 14.0 * u_b) * ref))
    thr = 0.5 - 0.3 * s * u_t
    out = blockify(mask, block, thr, (int(u_o[0]), int(u_o[1])))
    return out, [f"blocks({block},thr={thr:.2f})"]


def _strip(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    skel, width = centerline_width(mask)
    if not skel.any():
        return mask.copy(), ["strip(empty)"]
    u_w, u_eps = r[0].random(), r[1].random()
    ang, u_shift = r[2].random() * 2 * np.pi, r[3].random()
    fixed = max(1.0, width * (1.0 + s * (1.2 * u_w - 0.5)))
    eps = s * (1.0 + 4.0 * u_eps) * ref
    mag = s * (1.0 + 6.0 * u_shift) * ref
    shift = (float(mag * np.cos(ang)), float(mag * np.sin(ang)))
    out = strip(mask, fixed, eps, shift, skel=skel)
    return out, [f"strip(width={fixed:.1f},eps={eps:.1f},shift={mag:.1f})"]


def _blurred(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    u_sig, u_thr = r[0].random(), r[1].random()
    sigma = s * (2.0 + 6.0 * u_sig) * ref
    thr = 0.5 + s * 0.35 * (2.0 * u_thr - 1.0)  # < 0.5 grows the label, > 0.5 shrinks it
    out = blur_threshold(mask, sigma, thr)
    return out, [f"blur(sigma={sigma:.1f},thr={thr:.2f})"]


def _shifted(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    ang, u_mag, u_rad = r[0].random() * 2 * np.pi, r[1].random(), r[2].random()
    mag = s * (2.0 + 8.0 * u_mag) * ref
    dx, dy = float(mag * np.cos(ang)), float(mag * np.sin(ang))
    out = translate(mask, dx, dy)
    rad = int(round(s * (4.0 * u_rad - 2.0) * ref))
    out = morph(out, rad)
    return out, [f"translate({dx:.1f},{dy:.1f})", f"morph({rad})"]


def _freehand(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    ref = pixel_scale(mask.shape)
    u_step, u_wob, u_bias, u_merge = (r[i].random() for i in range(4))
    step = max(1.0, s * (8.0 + 16.0 * u_step) * ref)
    wobble = s * (3.0 + 8.0 * u_wob) * ref
    bias = s * (1.5 + 7.0 * u_bias) * ref
    merge = int(round(s * (4.0 + 12.0 * u_merge) * ref))
    min_area = s * 0.002 * mask.size
    out = freehand_outline(mask, r[4], step, wobble, bias, merge, min_area)
    ops = f"freehand(step={step:.1f},wobble={wobble:.1f},bias={bias:.1f},merge={merge})"
    return out, [ops]


def _wavy(mask: np.ndarray, s: float, r: list[np.random.Generator]) -> tuple[np.ndarray, list[str]]:
    # Only the boundary moves (no dilation, nothing dropped or added): a smooth random field with a
    # correlation length of 12-32 px (at 256 px) pushes it in and out, so the area stays about the
    # same while the boundary wanders, as in a label traced at too coarse a zoom.
    ref = pixel_scale(mask.shape)
    u_len, u_amp = r[0].random(), r[1].random()
    corr = (12.0 + 20.0 * u_len) * ref
    dx = smooth_field(r[2], mask.shape, corr)
    dy = smooth_field(r[3], mask.shape, corr)
    amp = s * (2.0 + 6.0 * u_amp) * ref
    out = displace(mask, dx, dy, amp)
    return out, [f"wavy(amp={amp:.1f},corr={corr:.1f})"]


def _missed(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    # Omission: whole objects (8-connected components) left out, the rest exact, as a labeller
    # who overlooked some slicks or a map without minor roads (the "omission noise" of Mnih and
    # Hinton, ICML 2012). Each label has its own miss rate (40-90 % x severity); one draw per
    # object decides, the same draws at every severity.
    rate = 0.4 + 0.5 * r[0].random()
    out, dropped = drop_objects(mask, r[1], s * rate)
    return out, [f"missed(p={s * rate:.2f},dropped={dropped})"]


_PROFILES: dict[str, Profile] = {
    "polygon": _polygon,
    "sloppy": _sloppy,
    "blocky": _blocky,
    "blurred": _blurred,
    "shifted": _shifted,
    "strip": _strip,
    "wavy": _wavy,
    "missed": _missed,
    "freehand": _freehand,
}


#: What "mixed" samples from (plus "strip" for line-like masks).
MIXED_CHOICES = ["polygon", "sloppy", "blocky", "blurred", "shifted"]


def _mixed(
    mask: np.ndarray, s: float, r: list[np.random.Generator]
) -> tuple[np.ndarray, list[str]]:
    # Never an EVAL_ONLY profile: those measure generalisation to coarse labels training never saw.
    choices = MIXED_CHOICES + (["strip", "strip"] if is_linear(mask) else [])
    name = choices[int(r[N_RNGS - 1].integers(len(choices)))]
    out, ops = _PROFILES[name](mask, s, r)
    return out, [f"mixed:{name}", *ops]


_PROFILES["mixed"] = _mixed


def check_train_profile(profile: str) -> str:
    """Refuse coarse-label profiles training must not use.

    Args:
        profile: A profile name.

    Returns:
        ``profile``, when it is one of :data:`TRAIN_PROFILES`.

    Raises:
        DataError: a held-out (:data:`EVAL_ONLY_PROFILES`) or unknown profile.
    """
    if profile in EVAL_ONLY_PROFILES:
        raise DataError(
            f"coarse profile {profile!r} is held out for evaluation and never used in training; "
            f"train with one of {', '.join(TRAIN_PROFILES)}"
        )
    if profile not in TRAIN_PROFILES:
        raise DataError(
            f"unknown coarse profile {profile!r}; choose one of {', '.join(TRAIN_PROFILES)}"
        )
    return profile


def _check_profile(profile: str, severity: float) -> None:
    """The one check of :func:`degrade`'s and :func:`degrade_folder`'s arguments (DataError)."""
    if profile not in _PROFILES:
        raise DataError(f"unknown coarse profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if not 0.0 <= severity <= 1.0:
        raise DataError(f"severity {severity} is outside [0, 1]; pass a value such as 0.5")


def degrade(
    mask: np.ndarray,
    profile: str = option_default(DegradeOptions, "profile"),
    severity: float = option_default(DegradeOptions, "severity"),
    seed: int | np.random.Generator = 0,
) -> CoarseResult:
    """Simulate a coarse label from an accurate mask.

    Args:
        mask: bool (H, W) accurate mask (another dtype: nonzero = object).
        profile: One of :data:`PROFILES` (see the module docstring).
        severity: Strength in [0, 1]; 0 returns the input exactly. Pixel amplitudes are defined for
            256 px images and scale with the image size.
        seed: Integer (deterministic) or a ``numpy.random.Generator``.

    Returns:
        :class:`CoarseResult`: ``mask`` bool (H, W), ``iou`` to the input (float in [0, 1]), ``ops``
        (what was applied, readable).

    Raises:
        DataError: an unknown profile, ``severity`` outside [0, 1], or ``mask`` not 2-D.
    """
    _check_profile(profile, severity)
    m = np.asarray(mask)
    if m.ndim != 2:
        raise DataError(f"mask must be (H, W), got shape {m.shape}; give one 2-D bool mask")
    m = m.astype(bool)
    if severity == 0.0:
        return CoarseResult(mask=m.copy(), iou=1.0, ops=[])
    out, ops = _PROFILES[profile](m, float(severity), _rngs(seed, N_RNGS))
    out = np.ascontiguousarray(out, dtype=bool)
    return CoarseResult(mask=out, iou=iou(m, out), ops=ops)


def file_seed(seed: int, name: str | int) -> int:
    """Per-file seed that depends on the file name (or id), not on listing order.

    Args:
        seed: The run's seed.
        name: File name or sample id.

    Returns:
        ``(seed * 1_000_003 + crc32(name)) & 0x7FFFFFFF`` (a 31-bit seed).
    """
    return (int(seed) * 1_000_003 + zlib.crc32(str(name).encode("utf-8"))) & 0x7FFFFFFF


def degrade_folder(
    masks: str | Path,
    out: str | Path,
    profile: str = option_default(DegradeOptions, "profile"),
    severity: float = option_default(DegradeOptions, "severity"),
    seed: int = 0,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    skipped: list[dict[str, str]] | None = None,
    ids: set[str] | None = None,
) -> tuple[Path, float]:
    """Degrade every mask in ``masks`` into ``out`` (same names, PNG 0/255) plus ``coarse_iou.csv``.

    In a folder that keeps images next to their masks (SOS ``train/palsar``: ``<id>_sat.jpg`` +
    ``<id>_mask.png``) only the masks are read (:func:`~sam2elnet.data.naming.drop_paired_images`).
    ``ids`` (pairing keys, e.g. from :func:`sam2elnet.data.runfolder.read_id_list`) restricts the
    job to those masks, e.g. the images a training run held out.

    Masks are read with :func:`sam2elnet.data.masks.read_mask_valid` (``positive_values`` for
    class-index masks); ignored / nodata pixels stay 127 (nodata) in the coarse label and are not
    counted in its IoU. GeoTIFF masks give GeoTIFF coarse labels with the same georeference.
    Unreadable masks (corrupt, truncated) are skipped and listed in ``out/skipped.csv``.

    Args:
        masks: A mask file or a folder of them.
        out: Output folder.
        profile, severity: As :func:`degrade`.
        seed: Run seed; each file gets :func:`file_seed` of its name.
        progress: Show a progress bar.
        positive_values: Mask values that mean "object" (class-index masks).
        skipped: When given, receives one ``{"mask", "reason"}`` dict per skipped mask.

    Returns:
        ``(csv_path, mean_iou)``: the ``coarse_iou.csv`` path and the mean IoU (0-1) of the
        degraded masks to their inputs.

    Raises:
        DataError: no mask can be read (the reasons summarised; nothing is left in ``out``).
    """
    from sam2elnet.data.images import read_image
    from sam2elnet.data.masks import read_mask_valid
    from sam2elnet.data.writers import write_mask
    from sam2elnet.utils.progress import track

    src = Path(masks)
    if not src.exists():
        raise DataError("mask folder does not exist; check the path", src)
    if not src.is_dir():
        raise DataError("expected a folder of masks; pass the folder, not a file", src)
    files = image_files(src)
    if not files:
        raise DataError("no mask files (.png/.jpg/.tif) in folder; check the path", src)
    files = drop_paired_images(files)
    if ids is not None:
        files = [f for f in files if mask_key(f.name) in ids]
        if not files:
            where = "mask in this folder"
            raise DataError(
                f"{none_of(len(ids), 'listed id', f'names a {where}', f'names no {where}')}; "
                "check --ids and --masks",
                src,
            )
    dst = Path(out)
    if dst.resolve() == src.resolve():
        raise DataError(
            "output folder is the mask folder; choose another --out so masks are kept", dst
        )
    from sam2elnet.utils.batch import SkipLog
    from sam2elnet.utils.lock import output_lock

    _check_profile(profile, severity)
    rows: list[tuple[str, float, str]] = []
    skips = SkipLog("mask")
    created = not dst.exists()  # before the lock makes it: a user's empty folder stays
    with output_lock(dst):
        for f in track(files, "degrade", "mask", progress, skipped=skips):
            try:
                m, valid = read_mask_valid(f, positive_values=positive_values)
            except DataError as err:  # one batch policy: skip the file, list it, go on
                skips.add(f, err)
                continue
            res = degrade(m, profile, severity, file_seed(seed, f.name))
            tif = f.suffix.lower() in GEO_SUFFIXES
            name = f.stem + (".tif" if tif else ".png")
            nodata = None if valid is None else ~valid
            v = res.iou if valid is None else iou(m[valid], res.mask[valid])
            write_mask(dst / name, res.mask, like=read_image(f) if tif else None, nodata=nodata)
            rows.append((name, v, ";".join(res.ops)))
        if skips:
            if not rows:
                if created:  # first: the list is written only into a folder that stays
                    shutil.rmtree(dst, ignore_errors=True)
                raise skips.nothing_done(len(files), src, csv=dst / SKIPPED_CSV)
        skips.write_csv(dst / SKIPPED_CSV)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "iou", "ops"])
    for name, v, ops in rows:
        writer.writerow([name, f"{v:.6f}", ops])
    csv_path = write_text_atomic(dst / "coarse_iou.csv", buf.getvalue())
    if skipped is not None:
        skipped.extend(skips.items)
    return csv_path, float(np.mean([r[1] for r in rows]))
