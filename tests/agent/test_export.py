"""agent.export: ship a run with its evaluation and, optionally, how it was chosen."""

import json

import pytest
import torch

from agent import checkpoint
from agent.export import main
from agent.model import ModelConfig, WorldModel


def _results(path, seeds, rate, ckpt="runs/x/model.safetensors", horizon=5):
    path.parent.mkdir(parents=True, exist_ok=True)
    r = {
        "policy": "mpc",
        "checkpoint": str(ckpt),
        "success_rate": rate,
        "success_ci95": [rate, rate],
        "episodes": 10,
        "seeds": seeds,
        "plan_ms_p50": 9.0,
        "plan_ms_p95": 12.0,
        "planner": "cem",
        "config": {
            "agent": {"horizon": horizon},
            "planner": {"name": "cem"},
            "checkpoint": str(ckpt),
        },
    }
    path.write_text(json.dumps(r))
    return path


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    checkpoint.save(tmp_path / "run" / "model", m, {"task": "point_mass", "step": 3, "config": {}})
    return tmp_path / "run"


def test_export_records_evaluation_commands_and_the_validation_choice(tmp_path, run):
    test = _results(tmp_path / "test.json", [100_000, 100_009], 1.0, run / "model.safetensors")
    vals = [
        _results(tmp_path / f"val{h}.json", [200_000, 200_009], r, horizon=h)
        for h, r in ((5, 0.9), (8, 1.0))
    ]
    argv = [
        "--run",
        str(run),
        "--eval",
        str(test),
        "--out",
        str(tmp_path / "ship" / "point_mass"),
        "--command",
        "make it",
        *[x for v in vals for x in ("--validation", str(v))],
    ]
    main(argv)
    m = json.loads((tmp_path / "ship" / "point_mass.json").read_text())
    assert m["evaluation"]["success_rate"] == 1.0 and m["commands"] == ["make it"]
    assert [c["success_rate"] for c in m["selection"]["candidates"]] == [0.9, 1.0]
    assert [c["agent"]["horizon"] for c in m["selection"]["candidates"]] == [5, 8]
    assert m["selection"]["rule"].startswith("highest validation success rate")
    checkpoint.load(tmp_path / "ship" / "point_mass.safetensors")  # still loads
    main([*argv, "--rule", "a tie: the faster one"])  # how a tie was broken
    m = json.loads((tmp_path / "ship" / "point_mass.json").read_text())
    assert m["selection"]["rule"] == "a tie: the faster one"


def test_validation_on_the_test_seeds_is_refused(tmp_path, run, capsys):
    test = _results(tmp_path / "test.json", [100_000, 100_009], 1.0, run / "model.safetensors")
    val = _results(tmp_path / "val.json", [100_005, 100_014], 1.0)
    out = tmp_path / "ship" / "point_mass"
    with pytest.raises(SystemExit) as e:
        main(["--run", str(run), "--eval", str(test), "--out", str(out), "--validation", str(val)])
    assert e.value.code == 2
    assert "overlap the held-out seeds" in capsys.readouterr().err
    assert not out.with_suffix(".json").exists() and not out.with_suffix(".safetensors").exists()


def test_variant_line_is_recorded_and_absent_otherwise(tmp_path, run):
    test = _results(tmp_path / "test.json", [100_000, 100_009], 1.0, run / "model.safetensors")
    out = tmp_path / "ship" / "variants" / "point_mass_wide"
    main(["--run", str(run), "--eval", str(test), "--out", str(out), "--variant", "wider"])
    assert json.loads(out.with_suffix(".json").read_text())["variant"] == "wider"
    main(["--run", str(run), "--eval", str(test), "--out", str(tmp_path / "main" / "point_mass")])
    assert "variant" not in json.loads((tmp_path / "main" / "point_mass.json").read_text())


def _finetuned(tmp_path, init, stage_of_init):
    """A finetune run whose ``config.init`` is a model of the given stage (a manifest only)."""
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    pre = {"task": "point_mass", "stage": stage_of_init, "step": 8, "train_wall_s": 300.0}
    if stage_of_init == "finetune":  # a shipped finetuned model: its own pretrain recorded
        pre.update(train_wall_s=500.0, config={}, pretrain={"step": 800, "train_wall_s": 40.0})
    checkpoint.save(init, m, pre)
    meta = {"task": "point_mass", "stage": "finetune", "step": 3, "train_wall_s": 10.0}
    checkpoint.save(tmp_path / "ft" / "model", m, {**meta, "config": {"init": str(init)}})
    return tmp_path / "ft"


def test_training_time_counts_the_pretrain_the_encoder_came_from(tmp_path):
    for stage, pretrain_s in (("pretrain", 300.0), ("finetune", 40.0)):
        init = tmp_path / stage / "model"
        run = _finetuned(tmp_path, init, stage)
        test = _results(tmp_path / "test.json", [100_000, 100_009], 1.0, run / "model.safetensors")
        out = tmp_path / "ship" / stage
        main(["--run", str(run), "--eval", str(test), "--out", str(out)])
        m = json.loads(out.with_suffix(".json").read_text())
        # from a shipped finetuned model: its pretrain's time, not its own finetune's (500 s)
        assert m["pretrain"]["train_wall_s"] == pretrain_s
        assert m["total_train_wall_s"] == pretrain_s + 10.0
        assert ("encoder_from" in m["pretrain"]) == (stage == "finetune")


def test_init_without_a_recorded_pretrain_is_refused_before_anything_is_written(tmp_path, capsys):
    init = tmp_path / "init" / "model"
    run = _finetuned(tmp_path, init, "finetune")
    meta = json.loads(init.with_suffix(".json").read_text())
    del meta["pretrain"]
    init.with_suffix(".json").write_text(json.dumps(meta))
    out = tmp_path / "ship" / "point_mass"
    with pytest.raises(SystemExit) as e:
        main(["--run", str(run), "--out", str(out)])
    assert e.value.code == 2 and "without a recorded pretrain" in capsys.readouterr().err
    assert not out.with_suffix(".safetensors").exists() and not out.with_suffix(".json").exists()


def test_a_pooled_pretrain_records_the_video_it_saw(tmp_path, monkeypatch):
    """The shipped manifest names every dataset of a pretrain on pooled video with its sha256:
    from the pretrain's own record, or from the dataset's meta.json where that record is older."""
    init = tmp_path / "pre" / "model"
    run = _finetuned(tmp_path, init, "pretrain")
    meta = json.loads(init.with_suffix(".json").read_text())
    meta.update(dataset_sha256="aa", config={"data": "data/a", "extra_video": ["data/b", "x/c"]})
    meta["extra_video_sha256"] = {"data/b": "bb"}
    init.with_suffix(".json").write_text(json.dumps(meta))
    (tmp_path / "x" / "c").mkdir(parents=True)
    (tmp_path / "x" / "c" / "meta.json").write_text(json.dumps({"sha256": "cc"}))
    out = tmp_path / "ship" / "point_mass"
    monkeypatch.chdir(tmp_path)  # the relative dataset paths, as the config wrote them
    main(["--run", str(run), "--out", str(out)])
    m = json.loads(out.with_suffix(".json").read_text())
    assert m["pretrain"]["data"] == {"data/a": "aa", "data/b": "bb", "x/c": "cc"}


def test_only_an_evaluation_of_this_model_planning_is_recorded(tmp_path, run, capsys):
    out = tmp_path / "ship" / "point_mass"
    other = tmp_path / "other" / "model"
    checkpoint.save(other, WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16)),
                    {"task": "point_mass", "step": 1})  # fmt: skip
    seeds = [100_000, 100_009]
    gcbc = _results(tmp_path / "g.json", seeds, 1.0, run / "model.safetensors")
    gcbc.write_text(json.dumps({**json.loads(gcbc.read_text()), "policy": "gcbc"}))
    for results, said in (
        (_results(tmp_path / "o.json", seeds, 1.0, other.with_suffix(".safetensors")),
         "other weights than"),
        (_results(tmp_path / "m.json", seeds, 1.0, tmp_path / "gone.safetensors"),
         "which is not here to compare"),
        (gcbc, "evaluated policy=gcbc, not the world model's planner"),
    ):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(["--run", str(run), "--eval", str(results), "--out", str(out)])
        assert e.value.code == 2 and said in capsys.readouterr().err
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["--run", str(run), "--eval", str(tmp_path / "empty.json"), "--out", str(out)])
    assert "is not an agent.evaluate results.json" in capsys.readouterr().err
    assert not out.with_suffix(".json").exists()
