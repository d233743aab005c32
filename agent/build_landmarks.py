"""Build the landmark graph of a world model from its training video.

    python -m agent.build_landmarks --checkpoint checkpoints/<task>.safetensors \
        --data data/<task> --out checkpoints/landmarks/<task> [--stride 4] [--proprio]
        [--proprio-only] [--image-only] [--across-episodes] [--scene-size 32 --scene-episodes 100]

    python -m agent.build_landmarks --out checkpoints/landmarks/<task> --record-eval <results.json>

Encodes every stride-th frame with the checkpoint's encoder, links consecutive frames and close
latents (``agent/landmarks.py``) and writes ``<out>.safetensors`` + ``<out>.json`` (the model's
sha256, the dataset's, the settings and this command). Use it with
``python -m agent.evaluate ... agent.landmarks=<out>.safetensors``; ``--record-eval`` then
copies that held-out evaluation into the graph's manifest (refused if it was run with another
graph or model). Plain argparse: a tool.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from agent import checkpoint
from agent.dataset import Dataset, atomic_write_json
from agent.errors import friendly_errors
from agent.export import evaluation_of
from agent.landmarks import FORMAT, LandmarkConfig, build


def build_landmarks(ckpt: str, data: str, out: str, cfg: LandmarkConfig, command: str) -> dict:
    if checkpoint.paths(out)[0].resolve() == checkpoint.paths(ckpt)[0].resolve():
        raise ValueError(
            f"--out {out} would overwrite the world model {ckpt}: "
            "use another name, e.g. checkpoints/landmarks/<task>"
        )
    model, manifest = checkpoint.load(ckpt)
    ds = Dataset(data)
    if ds.task != manifest.get("task"):
        raise ValueError(
            f"--data {data} holds task {ds.task!r} but the checkpoint is for "
            f"{manifest.get('task')!r}: pass the dataset the model was trained on"
        )
    t0 = time.perf_counter()
    graph = build(model.eval(), ds.iter_episodes(), cfg)
    info = {
        "task": ds.task,
        "model_sha256": checkpoint.digest(checkpoint.paths(ckpt)[0]),
        "dataset_sha256": ds.meta["sha256"],
        "dataset_episodes": ds.episodes,
        "config": asdict(cfg),
        "edges": int(len(graph.edges[0])),
        "build_seconds": round(time.perf_counter() - t0, 1),
        "command": command,
    }
    graph.save(out, info)
    return info


def record_evaluation(out: str, results: str) -> dict:
    """Copy a held-out ``agent.evaluate`` run that used this graph into its manifest."""
    weights, meta = checkpoint.paths(out)
    manifest = checkpoint.read_manifest(weights, FORMAT, "build it first")
    r = json.loads(Path(results).read_text())
    used = r["config"]["agent"].get("landmarks")
    if not used or checkpoint.paths(used)[0].resolve() != weights.resolve():
        raise ValueError(
            f"{results} was run with agent.landmarks={used!r}, not {weights}: evaluate with "
            "this graph first"
        )
    if checkpoint.digest(checkpoint.paths(r["checkpoint"])[0]) != manifest["model_sha256"]:
        raise ValueError(f"{results} used another world model than {weights} was built for")
    if min(r["seeds"]) < 100_000:
        raise ValueError(f"{results} ran on training seeds (< 100000): evaluate on held-out ones")
    manifest["evaluation"] = evaluation_of(r)
    atomic_write_json(meta, manifest)
    return manifest


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="world model .safetensors")
    ap.add_argument("--data", help="the dataset folder it was trained on")
    ap.add_argument("--out", required=True, help="output path (without extension)")
    ap.add_argument("--record-eval", help="results.json of agent.evaluate with this graph")
    ap.add_argument("--stride", type=int, default=LandmarkConfig.stride)
    ap.add_argument("--neighbours", type=int, default=LandmarkConfig.neighbours)
    ap.add_argument("--radius", type=float, default=LandmarkConfig.radius)
    ap.add_argument("--proprio", action="store_true", help="links also need proprio to agree")
    ap.add_argument(
        "--proprio-dims", type=int, nargs="+", help="proprio entries to use (default: all)"
    )
    ap.add_argument("--proprio-only", action="store_true", help="distances from the proprio alone")
    ap.add_argument(
        "--across-episodes",
        action="store_true",
        help="latent neighbours from other episodes only (their own frames are linked in order)",
    )
    ap.add_argument(
        "--image-only",
        action="store_true",
        help="proprio_state models: latent distances from the image part alone",
    )
    ap.add_argument(
        "--scene-size", type=int, default=0, help="per-episode scene thumbnail side (0 = off)"
    )
    ap.add_argument(
        "--scene-episodes", type=int, default=0, help="plan through this many matched scenes"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args(argv)
    if args.record_eval:
        e = record_evaluation(args.out, args.record_eval)["evaluation"]
        print(f"recorded {e['success_rate']:.2f} over {e['episodes']} episodes in {args.out}.json")
        return
    if not (args.checkpoint and args.data):
        raise ValueError("--checkpoint and --data are required to build a graph")
    if args.threads:
        torch.set_num_threads(args.threads)
    dims = None if args.proprio_dims is None else tuple(args.proprio_dims)
    cfg = LandmarkConfig(
        args.stride,
        args.neighbours,
        args.radius,
        args.proprio,
        dims,
        args.proprio_only,
        args.scene_size,
        args.scene_episodes,
        args.image_only,
        args.across_episodes,
    )
    command = "python -m agent.build_landmarks " + " ".join(argv or sys.argv[1:])
    info = build_landmarks(args.checkpoint, args.data, args.out, cfg, command)
    print(f"wrote {args.out}.safetensors: {info['edges']} edges in {info['build_seconds']} s")


if __name__ == "__main__":
    main()
