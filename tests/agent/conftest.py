import importlib.util
from pathlib import Path

import pytest

from agent.collector import CollectConfig, collect
from envs.config import EnvConfig


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Four short point_mass episodes (100 steps each), collected once per test session."""
    out = tmp_path_factory.mktemp("data") / "point_mass"
    collect(
        CollectConfig(
            env=EnvConfig("point_mass"),
            episodes=4,
            out=str(out),
            workers=1,
            chunk_size=2,
            video=False,
            policy="repeat",
        )
    )
    return out


@pytest.fixture
def script():
    """``script(name)``: the module ``scripts/<name>.py``, loaded from its file."""

    def load(name: str):
        path = Path(__file__).parents[2] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
