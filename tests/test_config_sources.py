"""TrainConfig.from_sources: the layering behind ``elnet train`` (YAML, resume, options, quality)."""

from __future__ import annotations

import pytest

from sam2elnet.config import QualityConfig, TrainConfig
from sam2elnet.errors import UserError


def test_options_override_the_yaml_file(tmp_path):
    yaml_cfg = TrainConfig(data=tmp_path / "d", out=tmp_path / "o", epochs=7, lr=1e-3)
    path = yaml_cfg.save(tmp_path / "c.yaml")
    cfg = TrainConfig.from_sources({"epochs": 3, "lr": None}, config=path, progress=False)
    assert cfg.epochs == 3  # given on the command line
    assert cfg.lr == pytest.approx(1e-3)  # None = not given: the file's value stays
    assert cfg.data == tmp_path / "d" and cfg.progress is False and cfg.fit_quality is True


def test_resume_reads_the_runs_own_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(data=tmp_path / "d", out=run, epochs=9, seed=5).save(run / "config.yaml")
    cfg = TrainConfig.from_sources({"out": run, "data": None}, resume=True)
    assert cfg.resume and cfg.epochs == 9 and cfg.seed == 5 and cfg.data == tmp_path / "d"
    with pytest.raises(UserError, match="nothing to resume"):
        TrainConfig.from_sources({"out": tmp_path / "empty"}, resume=True)


def test_quality_overrides_and_no_quality(tmp_path):
    cfg = TrainConfig.from_sources(
        {"data": tmp_path, "out": tmp_path / "o"},
        fit_quality=False,
        quality={"tta": 3, "tau": None},
    )
    assert cfg.fit_quality is False and cfg.quality.tta == 3
    assert cfg.quality.tau == QualityConfig().tau  # None keeps the default


def test_required_and_out_of_range_options_name_the_flag(tmp_path):
    with pytest.raises(UserError, match="--data is required"):
        TrainConfig.from_sources({"out": tmp_path})
    with pytest.raises(UserError, match=r"--workers: -1"):
        TrainConfig.from_sources(
            {"data": tmp_path, "out": tmp_path, "num_workers": -1},
            flags={"num_workers": "--workers"},
        )


def test_option_error_names_a_list_option_not_its_item_index():
    """A bad item of a list/tuple option is reported under the option's flag (not ``--0``)."""
    from typing import Literal

    from pydantic import BaseModel, ValidationError

    from sam2elnet.option_checks import option_error

    class M(BaseModel):
        sources: tuple[Literal["sim", "own"], ...] = ("sim",)

    with pytest.raises(ValidationError) as err:
        M(sources=("sim", "bogus"))
    msg = str(option_error(M, err.value))
    assert msg.startswith("invalid value for --sources: 'bogus'"), msg


def test_a_shared_yaml_file_need_not_name_data_and_out(tmp_path):
    """A config holding only hyper-parameters works with --data / --out on the command line."""
    path = tmp_path / "shared.yaml"
    path.write_text("coarse_prob: 1.0\nepochs: 4\n", encoding="utf-8")
    opts = {"data": tmp_path / "d", "out": tmp_path / "o", "epochs": None}
    cfg = TrainConfig.from_sources(opts, config=path)
    assert cfg.coarse_prob == 1.0 and cfg.epochs == 4
    assert cfg.data == tmp_path / "d" and cfg.out == tmp_path / "o"
    with pytest.raises(UserError, match="shared.yaml.*data: Field required"):
        TrainConfig.from_sources({"out": tmp_path / "o"}, config=path)


@pytest.mark.parametrize(
    ("given", "roads", "stored", "built", "said"),
    [
        ({}, False, None, 2, "trunk at half resolution (auto without SAM2 weights"),
        ({}, True, None, 1, "trunk at full resolution (auto for roads"),
        ({"domain": "other"}, False, 2, 2, "trunk at half resolution (auto without SAM2"),
        ({"domain": "roads"}, True, 1, 1, "trunk at full resolution (auto for roads"),
        ({"weights": "sam2.1_hiera_tiny.pt"}, False, 1, 1, "trunk at full resolution (auto: SAM2"),
        ({"trunk_scale": 1}, False, 1, 1, "trunk at full resolution (--trunk-scale 1)"),
        ({"domain": "roads", "trunk_scale": 2}, True, 2, 2, "trunk at half resolution (--trunk"),
        ({"init_model": "m.pt"}, False, None, None, "trunk resolution: the --init-model's"),
    ],
)
def test_trunk_scale_auto_follows_weights_and_domain(tmp_path, given, roads, stored, built, said):
    cfg = TrainConfig.from_sources({"data": tmp_path, "out": tmp_path / "r", **given})
    # stored: what config.yaml and cv's fold records hold (resolved when weights or a given
    # --domain decide it); built: what training builds once the domain is known
    assert cfg.trunk_scale == stored
    assert cfg.resolved_trunk_scale(roads) == built
    assert cfg.trunk_scale_note(roads).startswith(said)
    assert TrainConfig.model_validate(cfg.model_dump()).resolved_trunk_scale(roads) == built


@pytest.mark.parametrize(("given", "built", "said"), [(None, 2, "half"), (1, 1, "full")])
def test_init_model_keeps_its_trunk_scale_unless_given(tmp_path, given, built, said):
    # --init-model from a half-trunk model: the model file's scale, said as such; --trunk-scale 1
    # overrides it (only the forward pass changes, the trunk's weights do not depend on it)
    from sam2elnet.engine.train_setup import build_model_for
    from sam2elnet.model import ModelConfig, build_model, save_model

    half = save_model(
        build_model(ModelConfig(size="micro", in_bands=1, trunk_scale=2)), tmp_path / "h.pt"
    )
    opts = {"data": tmp_path, "out": tmp_path / "r", "init_model": half, "trunk_scale": given}
    cfg = TrainConfig.from_sources(opts)
    model = build_model_for(cfg, 1, None)  # norm: the model file's
    assert model.config.trunk_scale == built
    note = cfg.trunk_scale_note(False, model.config.trunk_scale)
    if given is None:
        assert note.startswith(f"trunk at {said} resolution (the --init-model's")
    else:
        assert note.startswith(f"trunk at {said} resolution (--trunk-scale {given})")


def test_trunk_scale_out_of_range_names_the_flag(tmp_path):
    with pytest.raises(UserError, match="--trunk-scale"):
        TrainConfig.from_sources({"data": tmp_path, "out": tmp_path / "r", "trunk_scale": 3})


def test_a_run_config_from_before_trunk_scale_resumes_at_full_resolution(tmp_path):
    """config.yaml files saved before --trunk-scale existed (no such key) trained the trunk at
    full resolution: they read back as 1, not as auto (which would build half without weights);
    a file that records auto (null) stays auto."""
    run = tmp_path / "run"
    run.mkdir()
    text = TrainConfig(data=tmp_path / "d", out=run, trunk_scale=2).to_yaml()
    old = "".join(x for x in text.splitlines(keepends=True) if not x.startswith("trunk_scale:"))
    assert "trunk_scale" not in old
    (run / "config.yaml").write_text(old, encoding="utf-8")
    assert TrainConfig.load(run / "config.yaml").trunk_scale == 1
    cfg = TrainConfig.from_sources({"out": run}, resume=True)
    assert cfg.trunk_scale == 1 and cfg.resolved_trunk_scale(False) == 1
    (run / "config.yaml").write_text(old + "trunk_scale: null\n", encoding="utf-8")
    assert TrainConfig.load(run / "config.yaml").resolved_trunk_scale(False) == 2


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({}, "trunk at half resolution (auto without SAM2 weights"),
        ({"trunk_scale": 2}, "trunk at half resolution (--trunk-scale 2)"),
        ({"domain": "roads"}, "trunk at full resolution (auto for roads"),
    ],
)
def test_resume_through_the_command_line_says_an_auto_trunk_scale_was_auto(tmp_path, given, said):
    """``elnet train --resume`` layers the run's config.yaml under the flags, so the scale the
    auto rule resolved came back as if given: the trunk line said ``(--trunk-scale 2)``. The file
    marks an auto scale (``trunk_scale_auto: true``); a given one stays given."""
    from sam2elnet.config import TRUNK_SCALE_AUTO_KEY
    from sam2elnet.engine.train_setup import resolve_trunk_scale, resumed_config

    run = tmp_path / "run"
    run.mkdir()
    roads = given.get("domain") == "roads"
    first = TrainConfig.from_sources({"data": tmp_path / "d", "out": run, **given})
    saved = resolve_trunk_scale(first, roads).save(run / "config.yaml")  # what train() records
    text = saved.read_text()
    assert (f"{TRUNK_SCALE_AUTO_KEY}: true" in text) == ("trunk_scale" not in given)
    cfg = TrainConfig.from_sources({"out": run, "trunk_scale": None}, resume=True)
    cfg = resumed_config(TrainConfig.load(saved), cfg, saved)
    assert cfg.trunk_scale == (1 if roads else 2)
    assert cfg.trunk_scale_note(roads, cfg.trunk_scale).startswith(said)
    assert TRUNK_SCALE_AUTO_KEY not in cfg.model_dump()  # not a field: fold records unchanged
    assert TrainConfig.load(saved) == resolve_trunk_scale(first, roads)  # the mark round-trips
