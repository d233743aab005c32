"""scripts/primitive_fidelity.py: its near / far split covers every scored state, ``--cost``
scores every way by the latent, and the same seeds give the same report."""

import numpy as np
import pytest

from tests.load import ROOT, load_module

CKPT = ROOT / "checkpoints"


@pytest.mark.slow
def test_the_split_covers_every_state_and_the_report_repeats():
    measure = load_module("scripts/primitive_fidelity.py").measure
    cost = "latent_whole"  # the latent path of every way

    def report():
        ckpt = CKPT / "variants" / "push_t_keypoints.safetensors"
        probe = CKPT / "probes" / "push_t_keypoints_pose.safetensors"
        return measure(str(ckpt), str(probe), range(200_000, 200_001), 12, 6, cost, 0.05)

    out = report()
    assert out["cost"] == cost and out["states"] >= 2
    for way in ("agent", "from_start", "real_latents"):
        split = out[way]
        near = split["near (< 0.05 m)"]["states"]
        assert near + split["far"]["states"] == split["all"]["states"] == out["states"]
        a = split["all"]
        assert -1 <= a["spearman_median"] <= 1 and 0 <= a["picked_gains_share"] <= 1
    again = report()
    assert again == out  # same seeds, same report
    assert np.isfinite(out["real_latents"]["all"]["spearman_median"])
