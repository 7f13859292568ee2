"""The SAM2-ELNet network (tensors only: no image files are read here)."""

from sam2elnet.model.elnet import ELNetOutput, ModelConfig, SAM2ELNet, build_model
from sam2elnet.model.hiera import HIERA_SPECS, build_trunk, load_encoder_weights
from sam2elnet.model.io import load_model, model_config_of, read_model_file, save_model

__all__ = [
    "ELNetOutput",
    "HIERA_SPECS",
    "ModelConfig",
    "SAM2ELNet",
    "build_model",
    "build_trunk",
    "load_encoder_weights",
    "load_model",
    "model_config_of",
    "read_model_file",
    "save_model",
]
