"""FolderSettings.from_arguments: the options annotate_folder / enhance_folder share, by name."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from sam2elnet.engine.folder_settings import FolderSettings
from sam2elnet.engine.infer import annotate_folder, enhance_folder

SHARED = {f.name for f in fields(FolderSettings) if f.name != "t0"}


@pytest.mark.parametrize("job", [annotate_folder, enhance_folder])
def test_every_shared_option_is_in_both_public_signatures(job: object) -> None:
    """A field added to FolderSettings must be a parameter of both jobs (with the same default
    where the field has one), or from_arguments would fail on every call."""
    params = inspect.signature(job).parameters  # type: ignore[arg-type]
    assert SHARED - set(params) == set()
    assert params["unusable_is_error"].default is True


def test_from_arguments_takes_the_fields_and_leaves_the_rest() -> None:
    args = {name: f"v-{name}" for name in SHARED} | {"images": "in/", "split": "test"}
    job = FolderSettings.from_arguments(args)
    assert {name: getattr(job, name) for name in SHARED} == {n: f"v-{n}" for n in SHARED}
    assert not hasattr(job, "images") and not hasattr(job, "split")


def test_from_arguments_missing_option_is_a_type_error() -> None:
    args = {name: None for name in SHARED if name != "model_path"}
    with pytest.raises(TypeError, match="model_path"):
        FolderSettings.from_arguments(args)
