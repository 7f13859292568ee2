"""sam2elnet.engine: models at work. Training, inference, large scenes, evaluation, metrics.

Rooms: ``runtime`` (device, autocast, threads, seeding, the forward pass), ``train`` and
``quality_fit`` (fine-tuning, the label quality evaluator), ``predictor`` (the Predictor), ``infer``
(annotate/enhance folder jobs; their parts in ``folder_inputs`` / ``folder_chunk`` /
``folder_job`` / ``folder_workers`` / ``change_maps``), ``executors`` / ``scene_inputs`` /
``scene_writer`` / ``scene`` (whole-scene prediction), ``distributed`` (Ray backend), ``metrics``
(pure measures) and ``evaluate`` (folder evaluation), ``downstream`` (baseline U-Net), ``losses``.

The public API is listed below and imported lazily on first use
(:func:`sam2elnet.utils.lazy.lazy_exports`), so ``import sam2elnet.engine`` and ``elnet --help``
stay fast. The training function is ``sam2elnet.engine.train.train`` (the name ``train`` here is
the submodule).
"""

from sam2elnet.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "train": ("TrainConfig", "TrainResult"),
        "quality_fit": ("fit_quality",),
        "runtime": (
            "resolve_device",
            "autocast",
            "set_threads",
            "seed_everything",
            "run_model",
            "ModelRun",
        ),
        "predictor": ("Predictor", "QualityScoringPredictor"),
        "infer": ("annotate_folder", "enhance_folder"),
        "folder_job": ("FolderResult",),
        "folder_inputs": ("list_images",),
        "executors": (
            "WindowPredictor",
            "BatchExecutor",
            "LocalExecutor",
            "SmoothingPredictor",
            "run_batch",
        ),
        "scene": ("SceneResult", "predict_scene", "is_large_scene"),
        "distributed": ("RayExecutor",),
        "metrics": (
            "Confusion",
            "confusion",
            "scores",
            "boundary_f1",
            "road_counts",
            "road_scores",
            "quality_stats",
        ),
        "evaluate": ("EvaluationResult", "evaluate_folders"),
    },
)
