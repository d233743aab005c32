"""Bad input to scripts/plannability.py, oracle_success.py and results_table.py: one error line
and exit status 2, never a traceback or a silently wrong report."""

import json
import shutil
import sys

import pytest

from tests.load import ROOT, load_module

CKPT = ROOT / "checkpoints"


def _fails(monkeypatch, capsys, script: str, *args: str) -> list[str]:
    """The stderr lines of ``script args`` run in-process, which must exit with status 2."""
    main = load_module(script).main
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


def _one_line(lines: list[str]) -> str:
    """A friendly error: exactly one ``error: <problem>: <fix>`` line."""
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_plannability_refuses_bad_checkpoints_and_data_in_one_line(
    tiny_dataset, monkeypatch, capsys
):
    run = "scripts/plannability.py"
    data = str(tiny_dataset)
    umaze = str(CKPT / "umaze.safetensors")
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoint", umaze, "--data", data))
    assert "task='umaze', not 'point_mass'" in line
    missing = str(tiny_dataset.parent / "nope.safetensors")
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoint", missing, "--data", data))
    assert "not found" in line and "--checkpoint" in line
    nodata = str(tiny_dataset.parent / "no_data")
    pm = str(CKPT / "point_mass.safetensors")
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoint", pm, "--data", nodata))
    assert "no_data does not exist" in line
    policy = str(next((CKPT / "gcbc").glob("*.safetensors")))
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoint", policy, "--data", data))
    assert "'jepa-mpc-gcbc-1'" in line and "not a world model" in line


@pytest.mark.parametrize(
    "args, says",
    [
        (["--window", "1"], "--window must be at least 2"),
        (["--heldout-fraction", "0"], "--heldout-fraction must be between 0 and 1"),
        (["--heldout-fraction", "1.5"], "--heldout-fraction must be between 0 and 1"),
    ],
)
def test_plannability_checks_window_and_heldout_fraction_up_front(
    args, says, tmp_path, monkeypatch, capsys
):
    # argparse refuses them before any file is read: the paths need not exist
    paths = ["--checkpoint", str(tmp_path / "m.safetensors"), "--data", str(tmp_path)]
    err = _fails(monkeypatch, capsys, "scripts/plannability.py", *paths, *args)
    assert says in err[-1]


def test_oracle_success_checks_episodes_and_tasks_up_front(monkeypatch, capsys):
    run = "scripts/oracle_success.py"
    assert (
        "--episodes must be at least 1" in _fails(monkeypatch, capsys, run, "--episodes", "0")[-1]
    )
    err = _fails(monkeypatch, capsys, run, "--tasks", "point_mass,nope")[-1]
    assert "unknown task 'nope'" in err and "point_mass" in err and "umaze" in err


def test_oracle_success_checks_the_out_folder_before_running(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "missing" / "oracle.json")
    err = _fails(monkeypatch, capsys, "scripts/oracle_success.py", "--out", out)[-1]
    assert "its folder does not exist" in err


def test_results_table_refuses_a_folder_without_world_model_manifests(
    tmp_path, monkeypatch, capsys
):
    run = "scripts/results_table.py"
    missing = tmp_path / "missing"
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoints", str(missing)))
    assert f"no manifests (*.json) found in {missing}" in line
    line = _one_line(_fails(monkeypatch, capsys, run, "--checkpoints", str(CKPT / "gcbc")))
    assert "is an evaluated world model" in line and "'jepa-mpc-gcbc-1'" in line


def test_results_table_skips_other_manifests_with_a_note(tmp_path, monkeypatch, capsys):
    shutil.copy(CKPT / "point_mass.json", tmp_path)
    shutil.copy(next((CKPT / "gcbc").glob("*.json")), tmp_path / "policy.json")
    monkeypatch.setattr(sys, "argv", ["results_table.py", "--checkpoints", str(tmp_path),
                                      "--baselines", str(tmp_path / "runs")])  # fmt: skip
    load_module("scripts/results_table.py").main()
    out, err = capsys.readouterr()
    assert [r.split(" | ")[0] for r in out.splitlines()[2:]] == ["| point_mass"]
    assert f"note: skipped {tmp_path / 'policy.json'}: format 'jepa-mpc-gcbc-1'" in err


def test_results_table_names_a_baseline_results_file_without_a_success_rate(
    tmp_path, monkeypatch, capsys
):
    bad = tmp_path / "point_mass" / "oracle" / "results.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({}))
    err = _fails(monkeypatch, capsys, "scripts/results_table.py", "--baselines", str(tmp_path))
    line = _one_line(err)
    assert f"{bad} is not an agent.evaluate results.json" in line
    assert "env=point_mass policy=oracle" in line
