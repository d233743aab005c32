import envs
from tests.load import load_module

success_split = load_module("scripts/success_split.py")


def test_split_groups_episodes_by_their_goal_state_entry():
    env = envs.make("arm_pick_place")
    heights = {}
    for seed in range(10):
        env.reset(seed=seed)
        heights[seed] = float(env.unwrapped.goal_state()[6])
    env.close()
    air = {s for s, z in heights.items() if z > 0.04}
    assert 0 < len(air) < 10  # both kinds among the first 10 seeds
    results = {
        "config": {"env": {"name": "arm_pick_place"}},
        "per_episode": [{"seed": s, "success": s in air} for s in heights],  # air ones succeed
    }
    out = success_split.split(results, dim=6, above=0.04)
    assert out["above"] == {"episodes": len(air), "success_rate": 1.0}
    assert out["below"] == {"episodes": 10 - len(air), "success_rate": 0.0}
