"""``agent.config.to_dataclass``: a value of the wrong type is one clear line naming the key,
before it reaches a dataclass (``eval.episodes=abc`` used to end in a TypeError traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from agent.collector import CollectConfig
from agent.config import to_dataclass
from agent.errors import friendly_errors
from agent.evaluation import EvalConfig
from agent.mpc import AgentConfig


@dataclass(frozen=True)
class Inner:
    count: int = 3
    rate: float = 0.5
    dims: tuple[int, ...] | None = None
    boxes: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    path: str = None  # type: ignore[assignment]  # a default outside the annotation stays legal
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    names: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    "cfg, message",
    [
        (
            {"inner": {"count": "abc"}},
            r"inner\.count='abc' is not an integer: pass an integer, "
            r"e\.g\. inner\.count=3 \(the default\)",
        ),
        ({"inner": {"count": 2.5}}, r"inner\.count=2\.5 is not an integer"),
        ({"inner": {"count": True}}, r"inner\.count=true is not an integer"),
        ({"inner": {"rate": "fast"}}, r"inner\.rate='fast' is not a number"),
        ({"inner": {"dims": ["a"]}}, r"inner\.dims=\['a'\] is not a list of integers or null"),
        ({"inner": {"boxes": [[0, "b"]]}}, r"is not a list of lists of numbers or null"),
        ({"flag": "yes"}, r"flag='yes' is not true or false"),
        ({"name": None}, r"name=null is not a string"),
        ({"names": "abc"}, r"names='abc' is not a list of strings"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        to_dataclass(Outer, cfg)


def test_values_that_fit_pass_and_ints_widen_to_float():
    out = to_dataclass(
        Outer,
        {
            "name": "y",
            "path": None,
            "flag": True,
            "inner": {"count": 4, "rate": 1, "dims": [0, 1], "boxes": [[0, 1.5]]},
            "names": ["a"],
        },
    )
    assert out.inner.rate == 1.0 and isinstance(out.inner.rate, float)
    assert out.inner.count == 4 and out.inner.dims == [0, 1] and out.flag is True
    assert out.inner.boxes == [[0.0, 1.5]]
    assert to_dataclass(Outer, {"inner": {"dims": None}}).inner.dims is None


def test_entry_point_configs_take_their_own_defaults_and_refuse_bad_seeds():
    for cls in (EvalConfig, CollectConfig, AgentConfig):
        to_dataclass(cls, {})  # every default passes its own check
    with pytest.raises(ValueError, match="eval.seed=-1"):
        to_dataclass(EvalConfig, {"eval": {"seed": -1}})
    with pytest.raises(ValueError, match="seed=-1"):
        to_dataclass(CollectConfig, {"seed": -1})
    with pytest.raises(ValueError, match="deadline_ms=0"):
        to_dataclass(AgentConfig, {"deadline_ms": 0})


@pytest.mark.slow
def test_evaluate_cli_turns_a_wrong_type_into_one_line(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "agent.evaluate", "eval.episodes=abc", f"output_dir={tmp_path}/e"],
        capture_output=True,
        text=True,
        cwd=repo,
        env=dict(os.environ, MUJOCO_GL="egl"),
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: eval.episodes='abc' is not an integer: pass an integer, "
        "e.g. eval.episodes=20 (the default)"
    ]
    assert not (tmp_path / "e" / "results.json").exists()  # only Hydra's own log folder


def _raises(exc: BaseException):
    @friendly_errors
    def main() -> None:
        raise exc

    return main


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 29491200000 bytes."
        ),
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore detail"),
    ],
)
def test_out_of_memory_is_one_line_naming_what_to_lower(exc, capsys):
    with pytest.raises(SystemExit) as e:
        _raises(exc)()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out of memory (")
    assert "lower batch_size" in err[0]


def test_ctrl_c_is_one_line_saying_how_to_resume(capsys):
    with pytest.raises(SystemExit) as e:
        _raises(KeyboardInterrupt())()
    assert e.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted: what was written is complete")


def test_an_entry_point_can_say_its_own_ctrl_c_line(capsys):
    @friendly_errors(interrupted="interrupted: nothing was written")
    def main() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted: nothing was written"]


def test_other_runtime_errors_are_not_hidden():
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _raises(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))()


def test_a_device_this_torch_cannot_use_is_one_line_up_front():
    from agent.config import check_device

    check_device("agent.device", "cpu")
    check_device("agent.device", "auto")
    with pytest.raises(ValueError, match=r"agent.device='gpu' is not a device: use cpu, cuda"):
        AgentConfig(device="gpu")
    if not torch.cuda.is_available():  # this machine (CI): the GPU hint, not a worker traceback
        with pytest.raises(ValueError, match=r"agent.device=cuda but this torch .* pass agent"):
            AgentConfig(device="cuda")
