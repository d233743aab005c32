"""Training windows read their frames from the dataset's memory-mapped chunks, unchanged."""

import numpy as np
import pytest
import torch

from agent.batches import ConcatWindows, Frames, Windows, split_episodes
from agent.dataset import Dataset


def test_frames_match_a_concatenation_without_copying_the_dataset(tiny_dataset):
    data = Dataset(tiny_dataset)
    eps = list(data.iter_episodes())
    pick = [3, 0, 2]  # out of order, across both chunks
    ref = torch.from_numpy(np.concatenate([np.asarray(eps[i]["pixels"]) for i in pick]))
    frames = Frames([eps[i]["pixels"] for i in pick])
    assert frames.shape == tuple(ref.shape) and len(frames) == len(ref)
    assert all(isinstance(s, np.memmap) for s in frames.sources)  # the chunks, not copies
    assert len(frames.sources) == 2  # four episodes in chunks of two
    idx = torch.randint(len(ref), (7, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(frames[idx], ref[idx])
    assert torch.equal(frames[3:250:7], ref[3:250:7]) and torch.equal(frames[::5], ref[::5])
    assert torch.equal(frames[np.array([-1])], ref[-1:])
    with pytest.raises(IndexError, match="out of range"):
        frames[np.array([len(ref)])]
    # arrays that are not rows of a chunk (here reversed in time) are indexed as they are
    flipped = Frames([np.asarray(eps[1]["pixels"])[::-1]])
    assert torch.equal(
        flipped[np.arange(4)], torch.from_numpy(np.asarray(eps[1]["pixels"])[:-5:-1].copy())
    )


def test_windows_gather_the_same_batch_with_or_without_frames(tiny_dataset):
    win = Windows(Dataset(tiny_dataset), np.arange(4), window=4, stride=2)
    idx = torch.arange(0, len(win), 37)
    full, lean = win.gather(idx), win.gather(idx, pixels=False)
    assert "pixels" not in lean and full["pixels"].shape[:2] == (len(idx), 4)
    for k in lean:
        assert torch.equal(full[k], lean[k])
    assert torch.equal(full["pixels"], win.pixels[win.frames(idx)])


def test_pooled_batches_group_each_dataset_for_the_spread_pairs(tiny_dataset):
    """Grouped, a pooled batch holds the same windows, each dataset's contiguous and in its
    drawn order, so the spread term's (i, i-1) pairs stay within a task but at the borders."""
    data = Dataset(tiny_dataset)
    a, b = Windows(data, np.arange(2), window=2), Windows(data, np.arange(2, 4), window=2)
    pool = ConcatWindows([a, b])
    idx = torch.randint(len(pool), (64,), generator=torch.Generator().manual_seed(0))
    grouped = pool.group(idx)
    assert sorted(grouped.tolist()) == sorted(idx.tolist())
    part = (grouped >= len(a)).long()
    assert int((part[1:] != part[:-1]).sum()) == 1  # one border between the two datasets
    for k in (0, 1):
        assert grouped[part == k].tolist() == [i for i in idx.tolist() if (i >= len(a)) == k]
    assert torch.equal(
        pool.gather(grouped)["pixels"][part == 1], b.gather(grouped[part == 1] - len(a))["pixels"]
    )


def test_the_held_out_split_skips_episodes_too_short_for_a_window():
    train, held = split_episodes(10, 0.2)
    assert list(held) == [8, 9] and list(train) == list(range(8))
    all_usable = np.ones(10, bool)
    assert [list(x) for x in split_episodes(10, 0.2, all_usable)] == [list(train), list(held)]
    usable = all_usable.copy()
    usable[[7, 9]] = False
    train, held = split_episodes(10, 0.2, usable)
    assert list(held) == [6, 8] and list(train) == [0, 1, 2, 3, 4, 5, 7, 9]
    train, held = split_episodes(3, 0.5, np.array([True, False, False]))
    assert list(held) == [] and list(train) == [0, 1, 2]  # the one usable episode trains
