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
