"""Before a training run starts: the run folder (new run, or what ``--resume`` continues) and the
network to train (new, or ``--init-model`` to fine-tune further).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sam2elnet.config import TrainConfig
from sam2elnet.engine.train_state import load_last
from sam2elnet.errors import CheckpointError, UserError
from sam2elnet.utils.atomic import remove_stale_temps

log = logging.getLogger("sam2elnet.engine.train")

__all__ = ["build_model_for", "prepare_run_dir"]


def build_model_for(cfg: TrainConfig, in_bands: int, norm: Any) -> Any:
    from sam2elnet.model import ModelConfig, build_model

    if cfg.init_model is not None:
        from sam2elnet.errors import DataError
        from sam2elnet.model import load_model

        model, _extra = load_model(cfg.init_model)
        if int(model.config.in_bands) != in_bands:
            raise DataError(
                f"the model to fine-tune takes {model.config.in_bands} bands but the images have "
                f"{in_bands}",
                cfg.init_model,
            )
        return model.train()
    kwargs: dict[str, Any] = {
        "size": cfg.size,
        "in_bands": in_bands,
        "weights": cfg.weights,
        "trunk_trainable": cfg.trunk,
        "normalization": norm.model_dump(mode="json"),
        "coarse_prior": cfg.coarse_prior,
    }
    if cfg.adapter_dim is not None:
        kwargs["adapter_dim"] = cfg.adapter_dim
    return build_model(ModelConfig(**kwargs))


def prepare_run_dir(cfg: TrainConfig) -> tuple[TrainConfig, str]:
    """New run: refuse to overwrite a previous one. Resume: continue from ``last.pt`` when it is
    readable (the saved config wins; only runtime options such as device, workers and progress
    may change, so the run continues unchanged); otherwise restart from the beginning and say
    why (no ``last.pt``: killed before the first epoch finished; damaged ``last.pt``).

    Returns the configuration to run and a note saying what ``--resume`` did ("" for new runs).
    """
    out = Path(cfg.out)
    saved = out / "config.yaml"
    last = out / "last.pt"
    if cfg.resume:
        remove_stale_temps(out, recursive=False)
        if saved.is_file():
            old = TrainConfig.load(saved)
            changed = [
                k
                for k in ("epochs", "batch_size", "lr", "fraction", "seed", "size", "image_size")
                if getattr(old, k) != getattr(cfg, k) and k in cfg.model_fields_set
            ]
            if changed:
                log.warning(
                    "--resume uses the saved config; ignoring changed option(s): %s",
                    ", ".join(changed),
                )
            cfg = old.model_copy(
                update={
                    "resume": True,
                    "device": cfg.device,
                    "num_workers": cfg.num_workers,
                    "progress": cfg.progress,
                    "distributed": cfg.distributed,
                }
            )
        why = ""
        if not last.is_file():
            why = "no resume state (last.pt) in the run folder: the run stopped before its first epoch ended"
        else:
            try:
                load_last(last)
            except CheckpointError as err:
                why = f"the resume state is unusable ({err})"
        if why:
            log.warning("%s; restarting the run from the beginning", why)
            return cfg.model_copy(update={"resume": False}), f"restarted: {why}"
        return cfg, "continued"
    if last.exists() or (out / "model.pt").exists():
        raise UserError(
            "run folder already holds a training run; pass --resume to continue it (or restart it, "
            "when it stopped before a resume state was saved) or choose a new --out",
            out,
        )
    return cfg, ""
