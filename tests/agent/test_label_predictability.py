"""scripts/label_predictability.py: learnable labels score far under the mean, noise does not."""

import numpy as np
import pytest

from tests.load import load_module

lp = load_module("scripts/label_predictability.py")


def _data(rng, labels_from_state: bool):
    x = rng.standard_normal((4000, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2)).astype(np.float32)
    y = np.tanh(x @ w) if labels_from_state else rng.uniform(-1, 1, (4000, 2))
    return x, y.astype(np.float32), np.repeat(np.arange(40), 100)


@pytest.mark.parametrize("learnable", [True, False])
def test_a_function_of_the_state_is_learned_and_noise_is_not(learnable):
    x, y, episode = _data(np.random.default_rng(0), learnable)
    rows = lp.fit(x, y, episode, steps=600, hidden=64, eval_every=300)
    ratio = min(r["val_mse"] for r in rows) / rows[0]["val_mse_mean_label"]
    assert (ratio < 0.2) if learnable else (ratio > 0.95)


def test_labels_the_dataset_lacks_are_one_clear_error(tiny_dataset, capsys):
    with pytest.raises(SystemExit) as e:
        lp.main(["--data", str(tiny_dataset), "--labels", "expert_actions"])
    assert e.value.code != 0
    assert "collect with expert_labels=true" in capsys.readouterr().err
