"""What is in a dataset folder, and its normalisation statistics (the library behind ``elnet stats``).

:func:`dataset_stats` finds the image/label pairs (:func:`sam2elnet.data.splits.discover_readable`),
optionally checks every pair (:func:`check_pairs`: whole files, matching sizes; a bad pair is
skipped), and computes per-band normalisation statistics
(:func:`sam2elnet.data.norm_fit.compute_stats`) from the *training* images only when
the layout has a train split and no split was asked for: normalisation describes the training
data, and looking at test images would leak them. :meth:`DatasetStats.payload` is the JSON that
``elnet stats --out FILE`` writes and ``elnet train --norm-stats FILE`` reads back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.data.gdal_errors import raster_error_text
from sam2elnet.data.georef import pixel_size, warn_scale_spread
from sam2elnet.data.images import check_complete
from sam2elnet.data.layouts import DatasetIndex, Sample
from sam2elnet.data.modality import with_modality
from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.data.norm_fit import compute_stats, fit_normalization, sar_needs_db
from sam2elnet.data.normalize import NormalizationConfig, describe
from sam2elnet.data.pair_sizes import pair_size_error
from sam2elnet.data.splits import discover_readable
from sam2elnet.data.zero_pixels import check_zero_training, zero_share
from sam2elnet.errors import DataError
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.options import StatsOptions
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.progress import silenced, track

__all__ = [
    "DatasetStats",
    "check_pairs",
    "dataset_stats",
    "evenly_spaced",
    "index_stats",
    "stats_config",
    "stats_samples",
]


def _check_decodes(path: Path) -> None:
    """Refuse a file that is truncated or damaged: PNG/JPEG are decoded whole
    (:func:`~sam2elnet.data.images.check_complete`; GDAL would return missing rows as zeros),
    other rasters must open with their last pixel readable (a truncated GeoTIFF loses its end)."""
    check_complete(path)  # PNG/JPEG: decoded whole; other formats pass
    if path.suffix.lower() in CV2_SUFFIXES:
        return
    import rasterio

    from sam2elnet.data.writers import verify_written

    try:
        verify_written(path)
    except (rasterio.errors.RasterioError, OSError) as err:
        raise DataError(raster_error_text("raster", err), path) from None


def check_pairs(samples: Sequence[Sample], progress: bool = True) -> tuple[list[Sample], SkipLog]:
    """``elnet stats --check``: the pairs whose files are whole and whose sizes match.

    Every image, mask and coarse label must open and decode (:func:`_check_decodes`: PNG/JPEG
    whole, other rasters to their last pixel), and masks and coarse labels must have their
    image's size (:func:`~sam2elnet.data.pair_sizes.pair_size_error`). A pair that fails is skipped
    with the batch policy (:class:`~sam2elnet.utils.batch.SkipLog`): one ``skipping FILE:
    reason`` warning naming the file that cannot be used.

    Args:
        samples: The pairs.
        progress: Show a progress bar.

    Returns:
        ``(good pairs, skips)``; ``skips.items`` holds ``{"file": path, "reason": message}``.
    """
    skips = SkipLog("file")
    good = []
    for s in track(samples, "check pairs", "pair", progress, skipped=skips):
        try:
            for p in (s.image, s.mask, s.coarse):
                if p is not None:
                    _check_decodes(Path(p))
            err = pair_size_error(s)
        except DataError as bad:
            err = bad
        if err is None:
            good.append(s)
        else:
            skips.add(err.path or s.image, err)
    return good, skips


def stats_samples(
    index: DatasetIndex, split: Sequence[str] | None = None
) -> tuple[list[Sample], bool]:
    """The pairs normalisation statistics describe.

    Args:
        index: What :func:`~sam2elnet.data.layouts.discover` found.
        split: The split folders asked for; when none was asked for and the layout has a
            ``train`` split beside others, only ``train`` is used (never look at test images).

    Returns:
        ``(samples, train_only)``: the pairs, and whether the train-split rule applied.
    """
    if not split and "train" in index.splits and len(index.splits) > 1:
        return [s for s in index.samples if s.split == "train"], True
    return list(index.samples), False


def evenly_spaced(samples: Sequence[Sample], max_images: int) -> list[Sample]:
    """At most ``max_images`` of ``samples``, evenly spaced over the list.

    Args:
        samples: The pairs.
        max_images: The most to keep; 0 keeps all.

    Returns:
        ``samples[int(i * len / max_images)]`` for i < max_images, or all of them.
    """
    if max_images and len(samples) > max_images:
        step = len(samples) / max_images
        return [samples[int(i * step)] for i in range(max_images)]
    return list(samples)


def stats_config(
    samples: Sequence[Sample],
    modality: str,
    *,
    to_db: bool | None = None,
    p_low: float = option_default(StatsOptions, "p_low"),
    p_high: float = option_default(StatsOptions, "p_high"),
    progress: bool = True,
    skips: SkipLog | None = None,
    zeros: dict[str, float] | None = None,
) -> NormalizationConfig:
    """Per-band normalisation statistics of the images of ``samples``.

    Args:
        samples: The pairs (see :func:`stats_samples`); only their images are read.
        modality: ``sar`` | ``optical`` (the dataset's).
        to_db: Convert linear SAR intensity to dB (10 log10) first; None = as ``elnet train``
            decides (SAR stored with more than 8 bits and not already in dB, judged on the first
            image).
        p_low, p_high: Percentiles (0-100) of the scaling range.
        progress: Show a progress bar.
        skips: Where an image that cannot be read is recorded and left out (the batch policy;
            :func:`~sam2elnet.data.norm_fit.compute_stats`); None: it raises DataError.
        zeros: Filled, when the statistics are in dB, with image path -> share of untagged
            pixels <= 0 (:func:`~sam2elnet.data.zero_pixels.zero_share`).

    Returns:
        The :class:`~sam2elnet.data.normalize.NormalizationConfig` with per-band ``mean`` /
        ``std`` and ``low`` / ``high`` (values at the percentiles, after the optional dB step).

    Raises:
        DataError: an image cannot be read (without ``skips``), or none can (with it).
    """
    base = NormalizationConfig.for_modality(modality)
    if to_db is None and base.sar:  # judged on the first image that reads
        # looked up per call, not at module import: tests replace data.images.read_image
        from sam2elnet.data.images import read_image

        for s in samples:
            try:
                to_db = sar_needs_db(read_image(s.image, sar=True))
                break
            except DataError:
                if skips is None or len(samples) == 1:
                    raise
                # recorded by compute_stats below, which reads it again
    base = base.model_copy(update={"to_db": bool(to_db), "p_low": p_low, "p_high": p_high})
    on_image = None
    if zeros is not None and base.to_db:  # the untagged zero border, counted as it is read
        found = zeros

        def on_image(path: str, img: Any) -> None:
            found[path] = zero_share(img.data[:, img.valid])

    return compute_stats(
        [s.image for s in samples], base, progress=progress, skips=skips, on_image=on_image
    )


@dataclass
class DatasetStats:
    """The pairs found and the normalisation computed from them.

    Attributes:
        index: Everything :func:`~sam2elnet.data.layouts.discover` found (pairs, layout,
            modality, unmatched files).
        samples: The pairs the statistics were computed from (after the train-split rule and
            ``max_images``).
        config: The normalisation (per-band ``mean`` / ``std`` and ``low`` / ``high`` at the
            chosen percentiles, in the image's units after the optional dB conversion).
        train_only: True when only the train split was used because no split was asked for.
        skipped: The pairs skipped, ``{"file": path, "reason": message}`` each: by ``check``
            (:func:`check_pairs`) or because their image could not be read for the statistics.
        n_pairs: The pairs the statistics were to describe (before skips and ``max_images``).
        checked: Whether every pair was checked first (``check``).
    """

    index: DatasetIndex
    samples: list[Sample]
    config: NormalizationConfig
    train_only: bool = False
    skipped: list[dict[str, str]] = field(default_factory=list)
    n_pairs: int = 0
    checked: bool = False
    #: :class:`~sam2elnet.data.domain.DomainGuess` of the labels, as ``elnet train`` decides it
    domain: Any = None
    #: road data: median road width over the labels looked at, px, and their number (None: none)
    road_width: tuple[float, int] | None = None
    #: road data: the first image's ground pixel size at its centre, metres (the projection's
    #: scale factor applied, :func:`~sam2elnet.data.georef.pixel_size`; None: no projected CRS)
    pixel_size_m: float | None = None
    #: the untagged-zero warning ``elnet train`` gives for these images when it converts to dB
    #: (a no-data border of 0 without a nodata tag: :func:`~sam2elnet.data.zero_pixels.
    #: check_zero_training`); None when it gives none
    zero_warning: str | None = None

    def domain_lines(self) -> list[str]:
        """What ``elnet stats`` says of the domain, as it says the modality and dB decision of
        SAR data: ``domain: roads (why; ...)`` with what training and evaluation do for roads,
        and on road data the labels' median road width (px, and m where the pixel size is
        known) beside the default road buffer (:data:`~sam2elnet.option_values.ROAD_BUFFER_PX`):
        Wiedemann et al. (1998) tie the buffer to the road width."""
        if self.domain is None:
            return []
        d = self.domain
        if not d.roads:
            return [f"domain: other ({d.reason}; elnet train --domain roads|other overrides)"]
        lines = [
            f"domain: roads ({d.reason}; elnet train --domain roads|other overrides): training "
            "runs the trunk at full resolution; validation, elnet evaluate and elnet cv report "
            "road completeness, correctness, quality and connectivity"
        ]
        m = self.pixel_size_m
        at = f" ({ROAD_BUFFER_PX * m:.3g} m at {m:.3g} m ground pixels)" if m else ""
        buffer = f"centre lines matched within --road-buffer {ROAD_BUFFER_PX:g} px{at}"
        if self.road_width is None:
            return [*lines, f"road measures: {buffer}"]
        w, n = self.road_width
        wm = f" = {w * m:.3g} m" if m else ""
        tip = "--road-buffer PX or --road-buffer-m M" if m else "--road-buffer PX"
        return [
            *lines,
            f"road width: median {w:.1f} px{wm} over {n} labels; road measures: {buffer}; "
            f"Wiedemann et al. (1998) tie the buffer to the road width ({tip} sets it)",
        ]

    def training_line(self) -> str | None:
        """What ``elnet train`` will scale these images by, when that is not ``config`` (the
        statistics ``--out`` writes for ``elnet train --norm-stats FILE``): 8-bit SAR keeps a
        fixed 0..255 scale and optical images a per-image stretch
        (:func:`~sam2elnet.data.norm_fit.fit_normalization`, on the same images). None when
        they agree or no image was used."""
        if not self.samples:
            return None
        try:
            with silenced():  # the same images again: their stage line was printed already
                fit = fit_normalization([s.image for s in self.samples], self.index.modality)
        except DataError:
            return None
        if fit.method == self.config.method:
            return None
        return (
            f"elnet train will use {describe(fit).removeprefix('normalisation: ')} (chosen from "
            "the data, docs/data.md); the statistics above are what --out writes for "
            "`elnet train --norm-stats FILE`"
        )

    def payload(self) -> dict[str, Any]:
        """The JSON of ``elnet stats --out``.

        Returns:
            ``normalization`` (a :class:`~sam2elnet.data.normalize.NormalizationConfig` dump),
            ``layout``, ``modality``, ``pairs`` per ``"split/sensor"``, ``unmatched`` and
            ``images_used`` (counts), ``n_skipped`` and ``skipped`` (the pairs skipped, file
            and reason).
        """
        return {
            "normalization": self.config.model_dump(),
            "layout": self.index.layout,
            "modality": self.index.modality,
            "pairs": {f"{sp}/{se}": n for (sp, se), n in self.index.counts().items()},
            "unmatched": len(self.index.unmatched),
            "images_used": len(self.samples),
            "n_skipped": len(self.skipped),
            "skipped": self.skipped,
            "domain": None
            if self.domain is None
            else {"domain": self.domain.domain, "reason": self.domain.reason},
            "road_width_px": None if self.road_width is None else self.road_width[0],
            "pixel_size_m": self.pixel_size_m,
        }


def dataset_stats(
    data: str | Path,
    *,
    layout: str = option_default(StatsOptions, "layout"),
    split: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
    modality: str | None = None,
    **options: Any,
) -> DatasetStats:
    """Find the pairs of a dataset folder and compute its normalisation statistics.

    Args:
        data: Dataset root (SOS, CHN6-CUG or ``images/`` + ``masks/``).
        layout: ``auto`` | ``sos`` | ``chn6`` | ``generic``.
        split: Only these split folders (``train``, ``val``, ``test``); None = all found, and
            then only ``train`` is used for statistics when there are several.
        sensors: SOS sensors (``palsar``, ``sentinel``); None = all.
        modality: ``sar`` | ``optical``; None = from the layout / ``dataset.json``.
        options: ``to_db``, ``p_low``, ``p_high``, ``max_images``, ``check``, ``progress``: as
            :func:`index_stats` takes them.

    Returns:
        The :class:`DatasetStats`.

    Raises:
        DataError: unreadable folder, no pairs, or no pair that could be used (the reasons
            summarised). A split folder that cannot be read is left out with a warning when
            ``split`` is None and another split can be read
            (:func:`~sam2elnet.data.splits.discover_readable`); an asked-for one is an error.
    """
    index = discover_readable(data, split, layout=layout, sensors=sensors or None,
                              modality=modality)  # fmt: skip
    index, _ = with_modality(index)
    return index_stats(index, split, **options)


def index_stats(
    index: DatasetIndex,
    split: Sequence[str] | None = None,
    *,
    to_db: bool | None = None,
    p_low: float = option_default(StatsOptions, "p_low"),
    p_high: float = option_default(StatsOptions, "p_high"),
    max_images: int = option_default(StatsOptions, "max_images"),
    check: bool = False,
    progress: bool = True,
) -> DatasetStats:
    """The statistics of the pairs :func:`~sam2elnet.data.layouts.discover` found (what
    :func:`dataset_stats` and ``elnet stats`` compute once the folder is read).

    A pair that cannot be used is skipped with the batch policy (a warning each, the ones after
    the first three of a reason in one summary warning; listed in
    ``skipped``): with ``check`` every file of every pair is verified first (:func:`check_pairs`);
    either way an image that cannot be read for the statistics is skipped.

    Args:
        index: What :func:`~sam2elnet.data.layouts.discover` found.
        split: The split folders asked for (:func:`stats_samples`: None and a train split
            beside others = the train split only).
        to_db: Convert linear SAR intensity to dB (10 log10) first; None = as ``elnet train``
            decides (SAR stored with more than 8 bits and not already in dB, judged on the first
            image that reads).
        p_low, p_high: Percentiles (0-100) of the scaling range.
        max_images: Use at most this many images, evenly spaced; 0 = all.
        check: Verify every pair first (whole files, labels of their image's size).
        progress: Show progress bars.

    Returns:
        The :class:`DatasetStats` (``samples``: the pairs used; ``n_pairs``: those considered).

    Raises:
        DataError: no pair could be used (one line, the reasons summarised; nothing computed);
            with one image, its own error.
    """
    samples, train_only = stats_samples(index, split)
    n_pairs = len(samples)
    skips = SkipLog("file")
    if check:
        samples, skips = check_pairs(samples, progress=progress)
        if not samples:
            raise skips.nothing_done(n_pairs, index.root)
    samples = evenly_spaced(samples, max_images)
    zeros: dict[str, float] = {}
    cfg = stats_config(samples, index.modality, to_db=to_db, p_low=p_low, p_high=p_high,
                       progress=progress, skips=skips, zeros=zeros)  # fmt: skip
    skips.warn_held()  # the pairs not warned about one by one (listed in ``skipped``)
    bad = {it["file"] for it in skips.items}
    used = [s for s in samples if str(s.image) not in bad]
    st = DatasetStats(index, used, cfg, train_only, skips.rows(), n_pairs, check)
    st.zero_warning = check_zero_training(
        {k: v for k, v in zeros.items() if k not in bad},
        cfg,
        images="images",
        effect="run elnet stats again; tagged pixels are left out of the statistics, training "
        "and validation, and labelled nodata (127)",
    )
    return _with_domain(st, index)


def _with_domain(st: DatasetStats, index: DatasetIndex) -> DatasetStats:
    """``st`` with the domain of its pairs' labels (:func:`~sam2elnet.data.domain.detect_domain`,
    the rule ``elnet train`` applies) and, for roads, the median road width and pixel size."""
    from sam2elnet.data.domain import detect_domain, median_width_px

    masks = [s.mask for s in st.samples]
    st.domain = detect_domain(masks, layout=index.layout, modality=index.modality, meta=index.meta)
    if st.domain.roads and st.samples:
        # looked up per call, not at module import: tests replace data.grids.raster_header
        from sam2elnet.data.grids import raster_header

        st.road_width = median_width_px(masks)
        head = raster_header(st.samples[0].image)
        ground = pixel_size(head.geo, head.shape)
        warn_scale_spread({head.path: ground})
        st.pixel_size_m = ground.metres
    return st
