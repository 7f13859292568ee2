"""The SAM2-ELNet network (tensors only: no image files are read here).

The public API is listed below and imported lazily on first use
(:func:`sam2elnet.utils.lazy.lazy_exports`), so importing a light room of this package
(:mod:`sam2elnet.model.weights_cache`, :mod:`sam2elnet.model.download`) does not import torch
and transformers: ``elnet weights list`` needs neither.
"""

from sam2elnet.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "elnet": ("ELNetOutput", "ModelConfig", "SAM2ELNet", "build_model"),
        "hiera": ("HIERA_SPECS", "build_trunk", "load_encoder_weights"),
        "io": ("load_model", "model_config_of", "read_model_file", "save_model"),
    },
)
