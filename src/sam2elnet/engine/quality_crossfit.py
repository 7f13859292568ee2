"""k-fold cross-fitting of the network for the label quality evaluator (``--quality-folds K``).

By default the evaluator learns from the final network's predictions on the validation split
(out of sample) plus training images (in sample, marked): cheap, but only the validation split
is honest. With ``quality.crossfit_folds = K`` (``elnet train --quality-folds K``) every
training image is predicted by a network that did not see it:

1. the run's training images are split into K disjoint folds (:func:`crossfit_folds`, seeded,
   stratified by empty / non-empty label so every fold network sees objects);
2. for each fold a network is trained with the run's settings on the other K-1 folds
   (``RUN/quality_folds/foldN/``, a normal run folder; ``quality.crossfit_epochs`` epochs, no
   validation split, the last epoch is kept) and predicts its held-out fold in both modes
   (annotation, and enhancement of the same simulated coarse labels validation uses);
3. the evaluator is fitted on these out-of-fold samples plus the final network's validation
   samples (:func:`sam2elnet.engine.quality_fit.fit_evaluator`): every labelled image once, all
   out of sample.

Features come from the fold network (its uncertainty on an unseen image); the PCA embedding
comes from the **final** network on the same item, because decoder embeddings of separately
trained networks live in different spaces and the evaluator is applied to the final network's
embeddings. Cost: K trainings on (K-1)/K of the images for ``crossfit_epochs`` epochs, plus two
inferences per training image and mode. Resumable: a finished fold leaves ``oof.npz`` (its
samples, ids, fold epochs and the final network's :func:`weights_digest`) and is reused while the
folds and ``crossfit_epochs`` stay the same (other epochs train the fold again); its embeddings
are recomputed (without training the fold again) when the final network is not the one that
made them (a cache from before the digest was recorded is treated the same way); an interrupted
fold training continues from its ``last.pt`` when it was started with the same settings in this
run folder (else it restarts).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2elnet.config import TrainConfig
from sam2elnet.engine.quality_fit import QualitySamples, collect_quality_samples
from sam2elnet.engine.quality_items import quality_items
from sam2elnet.engine.runtime import resolve_device
from sam2elnet.errors import UserError
from sam2elnet.option_checks import option_default
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.progress import abandon, progress_bar

log = logging.getLogger(__name__)

__all__ = ["check_crossfit", "crossfit_folds", "crossfit_samples", "weights_digest", "FOLDS_DIR"]

FOLDS_DIR = "quality_folds"
"""Sub-folder of the run that holds the fold networks (``foldN/``) and ``folds.json``."""
_CHUNK = 128  # items decoded at once while predicting a held-out fold (bounds memory)


def check_crossfit(k: int, n_train: int, data: Any = None) -> None:
    """Refuse a fold count the training set cannot fill (before any training starts).

    Args:
        k: ``quality.crossfit_folds`` (0 = off).
        n_train: training images of the run (after the validation split and ``--max-train``).
        data: the data folder, named in the message.

    Raises:
        UserError: ``k`` is 1, or larger than ``n_train`` (a fold would be empty), or the
            training set is too small to leave a fold network any image.
    """
    if k == 0:
        return
    if k < 2:
        raise UserError(f"--quality-folds {k}: give 0 (off) or 2-20 folds", data)
    if k > n_train:
        raise UserError(
            f"--quality-folds {k} needs at least {k} training images, the run has {n_train}; "
            "lower --quality-folds or leave it off",
            data,
        )


def crossfit_folds(
    ids: Sequence[str], k: int, seed: int, empty: Sequence[bool] | None = None
) -> list[list[str]]:
    """Split training ids into ``k`` disjoint folds that cover them all (seeded).

    With ``empty`` (one flag per id: the label has no object pixel) the folds are stratified:
    empty and non-empty ids are each shuffled and dealt round-robin, so every fold holds its
    share of both (fold sizes differ by at most 1 per stratum).

    Args:
        ids: sample ids (any order; the result does not depend on it).
        k: number of folds, 2 <= k <= len(ids).
        seed: seed of the shuffle.
        empty: optional per-id flags, aligned with ``ids``.

    Returns:
        ``k`` sorted id lists.

    Raises:
        UserError: ``k`` out of range for ``ids``.
    """
    check_crossfit(k, len(ids))
    flags = [False] * len(ids) if empty is None else [bool(e) for e in empty]
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 7127]))
    folds: list[list[str]] = [[] for _ in range(k)]
    start = 0
    for stratum in (False, True):
        members = [ids[i] for i in order if flags[i] == stratum]
        for j, p in enumerate(rng.permutation(len(members))):
            folds[(start + j) % k].append(members[p])
        start = (start + len(members)) % k  # the next stratum fills the smaller folds first
    return [sorted(f) for f in folds]


def weights_digest(model: Any) -> str:
    """SHA-256 (hex) of a network's ``state_dict``: every parameter and buffer, by name, dtype,
    shape and bytes (not the model file, whose ``extra`` changes when the evaluator is fitted).
    Identifies the final network whose embeddings a fold's ``oof.npz`` holds."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()


def _label_empty(samples: Sequence[Any], positive: tuple[float, ...] | None) -> list[bool]:
    from sam2elnet.engine.train_checks import mask_content

    return [not mask_content([s], positive)[0] for s in samples]


def _save_npz(path: Path, **arrays: Any) -> None:
    from sam2elnet.utils.atomic import write_bytes_atomic

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def _saved_fold_config(fdir: Path) -> TrainConfig | None:
    try:
        return TrainConfig.load(fdir / "config.yaml") if (fdir / "config.yaml").is_file() else None
    except UserError:  # unreadable: treated as absent (the fold is trained again)
        return None


ITEMS = "native"
"""How a fold's samples (``oof.npz``) were made: at native scale
(:func:`sam2elnet.engine.quality_items.quality_items`); samples of older runs, resized to the
training crop size, are predicted again by their fold network (not retrained)."""


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """A fold's ``oof.npz`` as a dict, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return None


def _made_for(cache: dict[str, np.ndarray], fdir: Path, ids: Sequence[str], epochs: int) -> bool:
    """Whether a fold's saved samples were made for the held-out ``ids`` by a fold network
    trained for ``epochs`` epochs (caches from before the epochs were recorded: the fold's
    ``config.yaml`` says). Whether they are at native scale (:data:`ITEMS`) is not checked."""
    if [str(i) for i in cache.get("ids", [])] != list(ids):
        return False
    if "epochs" in cache:
        made_with = int(cache["epochs"])
    else:
        saved = _saved_fold_config(fdir)
        made_with = int(saved.epochs) if saved is not None else -1
    return made_with == int(epochs)


def crossfit_samples(
    cfg: TrainConfig,
    data: Any,
    final_model: str | Path,
    train_fn: Callable[..., Any],
    say: Callable[[str], None] | None = None,
    batch_size: int = option_default(FolderJobOptions, "batch_size"),
) -> QualitySamples:
    """Train the fold networks and collect their out-of-fold evaluator samples.

    Args:
        cfg: the run's configuration (``quality.crossfit_folds`` >= 2).
        data: the run's :class:`~sam2elnet.engine.train_data.TrainData` (training samples,
            normalisation, band count, domain).
        final_model: the run's best model file (its embeddings are used, see module doc).
        train_fn: :func:`sam2elnet.engine.train.train` (passed in: it calls this module).
        say: progress lines (default: the log).
        batch_size: items per forward pass while predicting (the run's resolved batch size).

    Returns:
        The out-of-fold samples (both modes of every training image); ``info`` records folds,
        fold epochs and counts.

    Raises:
        UserError: a fold count the training set cannot fill.
    """
    from sam2elnet.engine.train_checks import positive_values
    from sam2elnet.model import load_model  # imports transformers: only when a model is read
    from sam2elnet.utils.atomic import write_json_atomic

    def _say(msg: str) -> None:
        (say or log.info)(msg)

    @contextlib.contextmanager
    def predicting(n: int, desc: str) -> Iterator[Any]:
        """A bar over ``n`` held-out images (lines with ``cfg.progress`` off), cleared
        without a closing line when an error stops it."""
        bar = progress_bar(n, desc, "img", cfg.progress, leave=False)
        try:
            yield bar
        except BaseException:
            abandon(bar)
            raise
        bar.close()

    qcfg = cfg.quality
    k = int(qcfg.crossfit_folds)
    samples = list(data.train_samples)
    check_crossfit(k, len(samples), cfg.data)
    by_id = {s.id: s for s in samples}
    ids = [s.id for s in samples]
    folds = crossfit_folds(ids, k, cfg.seed, _label_empty(samples, positive_values(cfg)))
    epochs = int(qcfg.crossfit_epochs or cfg.epochs)
    root = Path(cfg.out) / FOLDS_DIR
    root.mkdir(parents=True, exist_ok=True)
    norm_file = root / "normalization.json"  # every fold network uses the final run's
    write_json_atomic(norm_file, data.norm.model_dump(mode="json"))
    write_json_atomic(
        root / "folds.json", {"k": k, "seed": cfg.seed, "epochs": epochs, "folds": folds}
    )
    domain = "roads" if data.domain is not None and data.domain.roads else "other"
    device = resolve_device(cfg.device)
    final, _ = load_model(Path(final_model))
    final.to(device).eval()
    final_digest = weights_digest(final)

    def held_chunks(held: Sequence[str]) -> Iterator[tuple[int, list[Any]]]:
        """(offset, quality items) of ``held`` in chunks of :data:`_CHUNK` (bounded memory)."""
        for c0 in range(0, len(held), _CHUNK):
            chunk = [by_id[i] for i in held[c0 : c0 + _CHUNK]]
            yield c0, quality_items(chunk, data.norm, data.in_bands, cfg.seed, positive_values(cfg))

    def final_embeddings(
        held: Sequence[str], cache: dict[str, np.ndarray], name: str
    ) -> np.ndarray:
        """The final network's embeddings of a fold's held-out items, aligned with ``cache``."""
        parts = []
        with predicting(len(held), f"quality cross-fitting {name}/{k}, final network") as bar:
            for c0, items in held_chunks(held):
                b = collect_quality_samples(
                    final, items, device, cfg.precision, qcfg.tta, batch_size, bar=bar
                )
                parts.append((b[1], b[3], b[4] + c0))
        modes = np.concatenate([p[1] for p in parts])
        index = np.concatenate([p[2] for p in parts])
        if not (np.array_equal(modes, cache["modes"]) and np.array_equal(index, cache["index"])):
            raise RuntimeError("fold and final network samples are not aligned")
        return np.concatenate([p[0] for p in parts])

    def _train_fold(fdir: Path, saved: TrainConfig | None, held: Sequence[str]) -> Any:
        """Train (or resume) the fold network of ``fdir`` that does not see ``held``."""
        name = fdir.name
        if (fdir / "oof.npz").is_file():  # other folds / epochs, or damaged: start again
            _say(
                f"quality {name}/{k}: its saved samples were made with other folds or fold "
                f"epochs; training it again ({plural(epochs, 'epoch')})"
            )
            shutil.rmtree(fdir)
        elif saved is not None and (
            saved.epochs != epochs
            or list(saved.train_ids or []) != [i for i in ids if i not in set(held)]
            or Path(saved.out).resolve() != fdir.resolve()
        ):  # an unfinished fold of other settings (or of the run this one was copied from)
            _say(f"quality {name}/{k}: its unfinished training has other settings; restarting")
            shutil.rmtree(fdir)
        held_set = set(held)
        rest = [i for i in ids if i not in held_set]
        _say(
            f"quality cross-fitting {name}/{k}: training on {plural(len(rest), 'image')} for "
            f"{plural(epochs, 'epoch')}, predicting the {len(held)} it does not see"
        )
        fcfg = cfg.model_copy(
            update={
                "out": fdir,
                "train_ids": rest,
                "fraction": 1.0,
                "val_fraction": 0.0,
                "max_train": None,
                "epochs": epochs,
                "norm_stats": norm_file,
                "domain": domain,
                "fit_quality": False,
                "quality": qcfg.model_copy(update={"crossfit_folds": 0}),
                "distributed": False,
                "resume": (fdir / "config.yaml").is_file(),
            }
        )
        fcfg._stop_after = None  # a run ended early (--resume --epochs K) trains its folds in full
        res = train_fn(fcfg, echo=(lambda m, n=name: _say(f"  {n}: {m}")) if say else None)
        return load_model(res.best_path)[0]

    feats, embs, ious, modes, groups = [], [], [], [], []
    offset = 0
    for f, held in enumerate(folds):
        name = f"fold{f + 1}"
        fdir = root / name
        raw = _read_npz(fdir / "oof.npz")  # read once: reused, or made at the crop size
        made_for = raw is not None and _made_for(raw, fdir, held, epochs)
        cache = raw if made_for and str(raw.get("items", "")) == ITEMS else None
        if cache is None:
            saved = _saved_fold_config(fdir)
            # samples of a finished fold network made at the training crop size (before ITEMS)
            stale = made_for and (fdir / "model.pt").is_file()
            if stale:  # a finished fold network: only its samples are made again
                _say(
                    f"quality {name}/{k}: its saved samples were made at the training crop size; "
                    "predicting them again at native scale with its fold network"
                )
                fold_net, _ = load_model(fdir / "model.pt")
            else:
                fold_net = _train_fold(fdir, saved, held)
            fold_net.to(device).eval()
            parts: list[tuple[np.ndarray, ...]] = []
            # the held-out images, each by the fold and the final network: counted once, by
            # the fold network's pass (the final network's follows, chunk by chunk)
            with predicting(len(held), f"quality cross-fitting {name}/{k}") as bar:
                for c0, items in held_chunks(held):
                    a = collect_quality_samples(
                        fold_net, items, device, cfg.precision, qcfg.tta, batch_size, bar=bar
                    )
                    b = collect_quality_samples(
                        final, items, device, cfg.precision, qcfg.tta, batch_size
                    )
                    if not (np.array_equal(a[3], b[3]) and np.array_equal(a[4], b[4])):
                        raise RuntimeError("fold and final network samples are not aligned")
                    parts.append((a[0], b[1], a[2], a[3], a[4] + c0))
            cache = {
                "ids": np.asarray(held, dtype=str),
                "features": np.concatenate([p[0] for p in parts]),
                "embeddings": np.concatenate([p[1] for p in parts]),
                "ious": np.concatenate([p[2] for p in parts]),
                "modes": np.concatenate([p[3] for p in parts]),
                "index": np.concatenate([p[4] for p in parts]),
                "epochs": np.asarray(epochs),
                "final_model": np.asarray(final_digest),
                "items": np.asarray(ITEMS),
            }
            _save_npz(fdir / "oof.npz", **cache)
            del fold_net
            if device.type == "cuda":
                torch.cuda.empty_cache()
        elif str(cache.get("final_model", "")) != final_digest:
            # the fold network's samples stand; the embeddings are the final network's
            _say(
                f"quality cross-fitting {name}/{k}: reusing its fold network's samples; the "
                "final network changed since, recomputing their embeddings"
            )
            cache["embeddings"] = final_embeddings(held, cache, name)
            cache["final_model"] = np.asarray(final_digest)
            _save_npz(fdir / "oof.npz", **cache)
        else:
            _say(f"quality cross-fitting {name}/{k}: done before, reusing {fdir / 'oof.npz'}")
        feats.append(cache["features"])
        embs.append(cache["embeddings"])
        ious.append(cache["ious"])
        modes.append(cache["modes"])
        groups.append(offset + cache["index"].astype(np.int64))
        offset += len(held)
    n = int(sum(len(x) for x in ious))
    info = {
        "crossfit_folds": k,
        "crossfit_epochs": epochs,
        "crossfit_images": len(ids),
        "fold_sizes": [len(x) for x in folds],
    }
    _say(
        f"quality cross-fitting: {n} out-of-fold samples from {len(ids)} training images "
        f"({plural(k, 'fold')}, {plural(epochs, 'epoch')} each)"
    )
    return QualitySamples(
        features=np.concatenate(feats),
        embeddings=np.concatenate(embs),
        ious=np.concatenate(ious),
        modes=np.concatenate(modes),
        groups=np.concatenate(groups),
        info=info,
    )
