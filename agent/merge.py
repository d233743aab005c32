"""``python -m agent.merge --out <folder> <dataset> [<dataset> ...]``: several dataset folders of
one task or robot as one dataset.

A robot run (``agent.control``) logs one episode per folder; merged, the runs are one dataset
that ``agent.train`` splits into training and held-out runs. Also pools ``agent.collect``
datasets of one task. Each source chunk is copied whole, into a temp folder renamed into place;
``meta.json`` is written last, so an interrupted merge resumes by rerunning the same command,
and a folder without it is never read as a dataset. Dry runs (nothing was applied) and runs
without an action are left out with a note; sources of another task, action space, proprio
size or image size, and byte-identical sources (one ``sha256``: a copy would put the same
episodes in training and held-out), are refused with one line. Where the sources were collected
by different policies, each ``POLICY_KEYS`` field of the merged meta is the list of the
sources' values (``None`` where a source has none), in ``merged_from``'s order. DAgger labels
(``expert_actions``) are kept only when every source has them; otherwise a note says they were
dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agent import dataset as ds
from agent.dataset import Dataset, DatasetError, kind_mismatch
from agent.errors import friendly_errors

#: in ``--out`` while a merge is unfinished: the sources it merges (a rerun must match)
SOURCES_FILE = ".merge_sources.json"
#: meta fields that describe one source's collection, not the merged dataset
PER_SOURCE = (
    "chunks",
    "episodes",
    "transitions",
    "sha256",
    "reason",
    "message",
    "sources",
    "limited",
    "replaced",
    "plan_ms_p50",
    "plan_ms_p95",
    "ticks",
    "config",
    "goal",
    "reset_seeds",
    "seed",
    "chunk_size",
    "expert_labels",
    "dry_run",
)
#: meta fields that say which policy collected a source: one value per source where they differ
POLICY_KEYS = (
    "policy",
    "policy_checkpoint",
    "policy_sigma",
    "policy_eps",
    "policy_choices",
    "checkpoint",
)


def check_sources(paths: list[str], min_steps: int = 1) -> tuple[list[str], list[Dataset]]:
    """The sources that hold training data, as datasets, if they can be merged; else one
    ``DatasetError`` line. Dry runs (no action applied) and sources whose episodes all have
    fewer than ``min_steps`` actions (e.g. runs that faulted early) are left out with a note on
    stdout."""
    if len(set(map(os.path.realpath, paths))) != len(paths):
        raise DatasetError("a source is listed twice: list each dataset folder once")
    kept: list[tuple[str, Dataset]] = []
    for path in paths:
        d = Dataset(path)
        if d.meta.get("dry_run"):
            print(f"left out {path}: a dry run (no action was applied: not training data)")
        elif d.episodes == 0:
            print(f"left out {path}: no episodes (the run ended before its first action)")
        elif int(d.lengths.max()) < min_steps:
            print(f"left out {path}: no episode of {min_steps} or more steps (--min-steps)")
        else:
            kept.append((path, d))
    if not kept:
        raise DatasetError("no source holds episodes: pass dataset folders or robot run logs")
    paths, data = [p for p, _ in kept], [d for _, d in kept]
    first_with: dict[str, str] = {}
    for path, d in kept:
        sha = d.meta.get("sha256")
        if sha and sha in first_with:
            raise DatasetError(
                f"{first_with[sha]} and {path} hold the same data (sha256 {sha[:12]}...): the "
                "merge would repeat its episodes (in training and held-out); list one of them"
            )
        first_with.setdefault(sha, path)
    for path, d in kept:
        key = kind_mismatch(d, data[0])
        if key is not None:
            raise DatasetError(
                f"{path} has {key}={d.meta.get(key)!r} but {paths[0]} has "
                f"{data[0].meta.get(key)!r}: merge only datasets of one task or robot"
            )
    return paths, data


def merge(paths: list[str], out: str | os.PathLike, min_steps: int = 1) -> Path:
    """Write the sources' episodes, in order, as the dataset ``out``; returns its folder.
    ``min_steps``: leave out sources with no episode that long (check_sources)."""
    if min_steps < 1:
        raise DatasetError(f"--min-steps {min_steps}: use 1 or more")
    paths, data = check_sources(paths, min_steps)
    root = Path(out)
    if (root / "meta.json").exists():
        raise FileExistsError(f"{root} already holds a dataset: choose another --out")
    if any(Path(os.path.realpath(p)) == root.resolve() for p in paths):
        raise DatasetError(f"--out {root} is one of the sources: choose another folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(
            f"cannot write to --out {root} ({e}): choose a writable folder"
        ) from e
    ds.remove_stale_temp(root)
    _claim(
        root,
        [
            {"path": os.path.realpath(p), "sha256": d.meta.get("sha256")}
            for p, d in zip(paths, data, strict=True)
        ],
    )
    labels = all(d.expert_labels for d in data)
    if not labels and any(d.expert_labels for d in data):
        without = [p for p, d in zip(paths, data, strict=True) if not d.expert_labels]
        print(
            f"note: no expert labels in {', '.join(without)}, so the merged dataset keeps "
            "none (expert_actions dropped); merge the labelled datasets alone to keep them"
        )
    chunks = []
    for d in data:
        for name in d.meta["chunks"]:
            target = root / f"chunk_{len(chunks):05d}"
            if not target.exists():  # done in an interrupted run: resume past it
                _copy_chunk(d.root / name, target, labels)
            chunks.append(target.name)
    meta: dict[str, Any] = {k: v for k, v in data[0].meta.items() if k not in PER_SOURCE}
    for k in POLICY_KEYS:
        values = [d.meta.get(k) for d in data]
        if any(v != values[0] for v in values):  # collected by different policies
            meta[k] = values  # one per source, as merged_from
    meta.update(
        chunks=chunks,
        episodes=sum(d.episodes for d in data),  # every source chunk is copied whole
        transitions=sum(d.transitions for d in data),
        sha256=ds.file_digest(
            [root / c / f"{k}.npy" for c in chunks for k in ("pixels", "actions")]
        ),
        merged_from=[
            {"path": p, "sha256": d.meta.get("sha256"), "episodes": d.episodes}
            for p, d in zip(paths, data, strict=True)
        ],
        **({"expert_labels": True} if labels else {}),
    )
    ds.atomic_write_json(root / "meta.json", meta)
    return root


def _claim(root: Path, sources: list[dict[str, Any]]) -> None:
    """Record which sources ``root`` is a merge of, so a rerun resumes only the same merge
    (chunks copied by a merge of other sources are never reused); refuse a folder that holds
    anything else."""
    record = root / SOURCES_FILE
    if record.exists():
        if json.loads(record.read_text()) != sources:
            raise DatasetError(
                f"--out {root} holds an unfinished merge of other sources: rerun that merge's "
                "command, or choose another --out"
            )
        return
    if any(root.iterdir()):
        raise DatasetError(f"--out {root} is not empty: choose a new or empty folder")
    ds.atomic_write_json(record, sources)


def _copy_chunk(src: Path, target: Path, labels: bool) -> None:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    tmp.chmod(0o755)
    keys = (*ds.OBS_KEYS, "actions", *ds.EPISODE_KEYS, *(("expert_actions",) if labels else ()))
    try:
        for k in keys:
            shutil.copyfile(src / f"{k}.npy", tmp / f"{k}.npy")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", help="dataset folders (run logs, agent.collect output)")
    p.add_argument("--out", required=True, help="folder of the merged dataset (new)")
    p.add_argument(
        "--min-steps",
        type=int,
        default=1,
        help="leave out sources with no episode this long (e.g. the training window, so that "
        "runs that faulted early cannot make up the held-out split)",
    )
    a = p.parse_args(argv)
    root = merge(a.sources, a.out, a.min_steps)
    d = Dataset(root)
    n = len(Dataset(root).meta["merged_from"])
    print(f"wrote {root}: {d.episodes} episodes, {d.transitions} transitions from {n} datasets")


if __name__ == "__main__":
    main()
