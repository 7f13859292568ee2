"""sam2elnet.pipeline: job front doors and whole workflows on top of the engine and export.

Rooms: ``jobs`` (annotate/enhance folder jobs with the report), ``scenes`` (``elnet scene``:
folders of scenes, model loading, Ray), ``experiment`` (the paper protocol), ``demo``,
``refine`` (classical refinement baselines), ``report`` / ``report_page`` / ``report_items`` /
``report_rows`` / ``report_cards`` / ``report_tables`` / ``report_figures`` / ``report_plots`` /
``report_map`` / ``glossary`` (the HTML report).

The public API is listed below and imported lazily on first use
(:func:`sam2elnet.utils.lazy.lazy_exports`), so ``import sam2elnet.pipeline`` and ``elnet --help``
stay fast.
"""

from sam2elnet.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "jobs": ("annotate_folder", "enhance_folder", "folder_report"),
        "scenes": ("scene_job", "predict_scenes", "load_scene_predictor", "SceneBatchResult"),
        "experiment": ("ExperimentConfig", "run_experiment"),
        "demo": ("DemoConfig", "run_demo"),
        "refine": ("REFINERS", "refine_folder", "RefineResult"),
        "report": ("ReportItem", "write_report", "write_run_report", "write_evaluation_report"),
    },
)
