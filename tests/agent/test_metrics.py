import numpy as np
import torch

from agent.metrics import rank_correlation


def test_within_episode_ranking_sees_through_a_per_episode_constant():
    """Latent = position + a large per-episode offset (two_room's door): ranking across
    episodes is poor, ranking within one episode is perfect."""
    rng = np.random.default_rng(0)
    episode = np.repeat(np.arange(20), 50)
    state = rng.uniform(-1, 1, (len(episode), 2))
    offset = 20 * rng.standard_normal((20, 8))[episode]
    z = torch.tensor(np.c_[state, np.zeros((len(episode), 6))] + offset)
    dist = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    r = rank_correlation(z, state, dist, episode=episode)
    assert r["within"] > 0.95 and r["all"] < 0.3
    assert "within" not in rank_correlation(z, state, dist)
