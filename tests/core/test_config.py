import hashlib
import json
from pathlib import Path

import pytest

from core.config import Config, ConfigError, load_config
from core.ids import run_id_for

ROOT = Path(__file__).resolve().parents[2]


SHIPPED = sorted((ROOT / "configs").rglob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_study_variants_share_the_demo_search_space():
    demo = load_config(ROOT / "configs" / "demo.toml")
    for path in (ROOT / "configs" / "studies").glob("*.toml"):
        assert load_config(path).space == demo.space, path


def test_round_trip_and_replace():
    cfg = Config()
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(train={"steps": 7}).train.steps == 7


@pytest.mark.parametrize("text, needle", [
    ("[space]\nbogus = 1\n", "unknown key 'bogus' in [space]"),
    ("[space]\nunit = 'eight'\n", "[space].unit"),
    ("[space]\ngroups = [1, 3]\n", "[space].groups"),
    ("[data]\ndataset = 'mnist'\n", "[data].dataset"),
    ("[train]\nbatch_size = 1\n", "[train].batch_size"),
    ("[space]\nbudget = [0.9, 0.5]\n", "[space].budget"),
    ("[space]\nkernels = [3, 4]\n", "[space].kernels"),
    ("device = 'tpu'\n", "device"),
    ("[hypernet]\ngenerate = 'everything'\n", "[hypernet].generate"),
    ("colour = 'blue'\n", "unknown key 'colour'"),
    ("[train\n", "not valid TOML"),
])
def test_bad_configs_name_the_setting(tmp_path, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_a_stored_config_without_later_settings_keeps_its_old_behaviour():
    raw = Config().to_dict()
    del raw["space"]["width_prior"], raw["hypernet"]["dense_input"], raw["hypernet"]["weight_norm"]
    old = Config.from_stored(raw)
    assert (old.space.width_prior, old.hypernet.dense_input, old.hypernet.weight_norm) == ("soft", False, "channel")
    new = Config.from_dict(raw)  # a TOML file the user writes gets today's defaults
    assert (new.space.width_prior, new.hypernet.dense_input, new.hypernet.weight_norm) == ("authors", True, "tensor")
    assert Config.from_stored(Config().to_dict()) == Config()


def test_a_config_that_keeps_error_scores_keeps_its_run_id():
    """[score] metric and delta came after run ids: at "error" and unset they are left out of
    the id, so a config that does not use them resumes the run it began before they existed."""
    cfg = load_config(ROOT / "configs" / "demo.toml").replace(score={"metric": "error"})
    before = cfg.to_dict()
    before["score"].pop("metric")
    before["score"].pop("delta")
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:8]
    assert run_id_for(cfg) == f"demo-{digest}"
    assert run_id_for(cfg.replace(score={"metric": "loss"})) != run_id_for(cfg)
    assert run_id_for(cfg.replace(score={"delta": 0.01})) != run_id_for(cfg)
    with pytest.raises(ConfigError, match=r"\[score\]\.metric = 'acc'"):
        cfg.replace(score={"metric": "acc"})


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.toml")))
def test_a_config_written_as_toml_reads_back_equal(name):
    import tomllib

    from core.config import Config

    cfg = load_config(ROOT / "configs" / name).replace(score={"delta": 0.05})
    assert Config.from_dict(tomllib.loads(cfg.to_toml())) == cfg
    unset = load_config(ROOT / "configs" / name)
    assert "delta" not in unset.to_toml() and Config.from_dict(tomllib.loads(unset.to_toml())) == unset
