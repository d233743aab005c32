"""Landmark graph: a nonparametric high level that turns a far goal into near subgoals.

Latent distance ranks straight-line closeness, so a greedy MPC cost drives a ball into the wall
between it and the goal. The fix follows SPTM (Savinov et al., 2018) and Search on the Replay
Buffer (Eysenbach et al., 2019): the nodes are encoded frames of the training video, edges join
consecutive frames of an episode (weight = env steps between them) and frames whose latents are
close (weight = latent distance in units of the median one-step latent move, both ways). At
``reset(goal)`` one Dijkstra from the goal gives every node its steps-to-goal; at each replan
the agent enters the graph at the node minimising (distance to it + its steps-to-goal) and
hands the MPC the first node on the shortest path that is ``lookahead`` steps away, or the goal
itself once the path is that short.

Scenes that change per episode (two-room's door) break the graph's links: a path follows another
episode through *its* door. With ``scene_size`` the graph keeps, per training episode, a small
grey thumbnail of its per-pixel median frame (the static scene: the moving parts vanish in the
median), and ``reset`` keeps only the ``scene_episodes`` episodes whose scene is nearest the
goal image's, so every path runs through frames of the goal's own layout.

Built by ``python -m agent.build_landmarks`` and stored as safetensors + JSON next to the
world model it was encoded with (the manifest pins that model's sha256). No task knowledge:
the graph sees only frames, their order, the encoder and (optionally) the proprio.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from agent import checkpoint

FORMAT = "jepa-mpc/landmarks/1"


@dataclass(frozen=True)
class LandmarkConfig:
    """How the graph is built (recorded in its manifest)."""

    stride: int = 2  #: keep every stride-th frame of each training episode as a node
    neighbours: int = 8  #: latent nearest neighbours linked per node
    #: link two nodes only if their latent distance is below this many median one-step moves
    radius: float = 3.0
    use_proprio: bool = False  #: links and matches also need the proprio to agree
    #: which proprio entries count (None = all), e.g. [0, 1] for a position without velocity
    proprio_dims: tuple[int, ...] | None = None
    #: distances (links, entry, goal) from the proprio alone, the latent only rides along as
    #: the subgoal: for a latent that ranks poorly across episodes (two-room's wall model)
    proprio_only: bool = False
    #: side of each episode's static-scene thumbnail (0 = no scene matching)
    scene_size: int = 0
    #: at reset, plan only through the episodes whose scene is nearest the goal's
    scene_episodes: int = 0
    #: model.proprio_state latents: latent distances from the image part alone (the proprio
    #: part rides along in the subgoal): the nodes are object states, whatever the robot
    #: does, e.g. a masked arm's cube (set by the build from the model)
    image_only: bool = False
    #: draw the latent neighbours from other episodes only (an episode's own frames are
    #: linked in order already): where many frames of one episode look alike (a masked
    #: robot moving over a still cube) its own frames would fill every neighbour slot
    across_episodes: bool = False

    def __post_init__(self) -> None:
        if self.stride < 1 or self.neighbours < 1 or self.radius <= 0:
            raise ValueError("landmarks: need stride >= 1, neighbours >= 1 and radius > 0")
        if self.scene_size < 0 or self.scene_episodes < 0:
            raise ValueError("landmarks: scene_size and scene_episodes must be >= 0")
        if bool(self.scene_size) != bool(self.scene_episodes):
            raise ValueError(
                "landmarks: scene matching needs both --scene-size and --scene-episodes > 0"
            )
        if (self.proprio_dims is not None or self.proprio_only) and not self.use_proprio:
            raise ValueError(
                "landmarks: proprio_dims and proprio_only need use_proprio (--proprio)"
            )


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between rows of a (M, D) and b (N, D), clamped at 0 before sqrt."""
    d2 = a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)
    return d2.clamp_min(0).sqrt()


def _unit(x: torch.Tensor, same: np.ndarray, gap: np.ndarray) -> float:
    """Median distance per env step between consecutive nodes of one episode; where most
    consecutive nodes are identical (a masked robot moving over a still cube: the median
    would be 0), the median over the hops that move."""
    hop = torch.linalg.vector_norm(x[1:] - x[:-1], dim=1).numpy()[same]
    if not hop.size:
        return 1.0
    rate = hop / np.maximum(gap, 1)
    still = 1e-6 * float(rate.max())  # a hop this small is a repeated frame
    unit = float(np.median(rate))
    if unit <= still and (rate > still).any():
        unit = float(np.median(rate[rate > still]))
    return max(unit, 1e-8)


def scene_thumbnail(pixels: Any, size: int) -> torch.Tensor:
    """(T, H, W, C) uint8 frames -> (size * size,) grey thumbnail of their per-pixel median
    in [0, 1] (one frame: that frame). Area-averaged, so sub-pixel moves still show."""
    x = torch.from_numpy(np.array(pixels, np.float32))  # a copy: frames may be read-only
    x = x[None] if x.dim() == 3 else x
    still = x.median(dim=0).values.mean(-1) / 255.0  # (H, W)
    return torch.nn.functional.adaptive_avg_pool2d(still[None, None], size).flatten()


def _shortest_unique(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge per (src, dst), the lightest (scipy's sparse matrices would SUM duplicates)."""
    order = np.lexsort((w, dst, src))
    src, dst, w = src[order], dst[order], w[order]
    first = np.ones(len(src), bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return src[first].astype(np.int64), dst[first].astype(np.int64), w[first].astype(np.float64)


class LandmarkGraph:
    """``reset(z_goal)`` once per episode, then ``subgoal(z, lookahead)`` at every replan."""

    def __init__(
        self,
        z: torch.Tensor,
        edges: tuple[np.ndarray, np.ndarray, np.ndarray],
        unit: float,
        proprio: torch.Tensor | None = None,
        punit: float = 1.0,
        radius: float = 3.0,
        proprio_dims: list[int] | None = None,
        episode: np.ndarray | None = None,
        scenes: torch.Tensor | None = None,
        scene_episodes: int = 0,
        proprio_only: bool = False,
        dist_dims: int | None = None,
    ) -> None:
        self.z = z.flatten(1).float()  # (M, D) node latents
        #: distances use the first dist_dims latent entries (None: all; the image part of a
        #: proprio_state latent for an image_only graph)
        self.dist_dims = dist_dims
        self.p = None if proprio is None else proprio.float()  # (M, P) node proprio
        if self.p is not None and len(self.p) != len(self.z):
            raise ValueError(f"landmarks: {len(self.p)} proprio rows for {len(self.z)} nodes")
        self.pdims = None if proprio_dims is None else list(proprio_dims)  # of the robot's
        self.edges = edges  # (src, dst, weight in env steps)
        self.unit, self.punit, self.radius = unit, punit, radius
        self.to_goal: np.ndarray | None = None
        self.next_hop: np.ndarray | None = None
        self.goal_nodes: set[int] = set()
        #: scene matching: each node's episode, each episode's thumbnail, how many to keep
        self.episode = None if episode is None else np.asarray(episode, np.int64)
        self.scenes = None if scenes is None else scenes.float()
        self.scene_episodes = scene_episodes
        if self.scenes is not None and (self.episode is None or len(self.episode) != len(self.z)):
            raise ValueError("landmarks: scene thumbnails need one episode index per node")
        self.allowed: np.ndarray | None = None  # nodes of the matched episodes (None: all)
        self.proprio_only = proprio_only
        if proprio_only and self.p is None:
            raise ValueError("landmarks: proprio_only needs the nodes' proprio")

    @classmethod
    def from_frames(
        cls,
        z: torch.Tensor,
        episode: np.ndarray,
        step: np.ndarray,
        cfg: LandmarkConfig,
        proprio: torch.Tensor | None = None,
        scenes: torch.Tensor | None = None,
        image_dims: int | None = None,
    ) -> LandmarkGraph:
        """Link consecutive nodes of an episode, then each node to its close latent neighbours.

        ``scenes`` (E, S*S): the thumbnail of each episode (``episode`` indexes its rows)."""
        z = z.flatten(1).float()
        m = len(z)
        dist_dims = image_dims if cfg.image_only else None
        if cfg.image_only and image_dims is None:
            raise ValueError("landmarks: image_only needs the latent's image size (image_dims)")
        episode, step = np.asarray(episode), np.asarray(step)
        if m < 2 or len(episode) != m or len(step) != m:
            raise ValueError(f"landmarks: need >= 2 nodes with one episode/step each, got {m}")
        same = episode[1:] == episode[:-1]
        gap = (step[1:] - step[:-1])[same]
        p = None if proprio is None else proprio.float()
        graph = cls(
            z,
            (np.zeros(0, np.int64),) * 2 + (np.zeros(0),),  # linked below, by _steps
            _unit(z[:, :dist_dims], same, gap),
            p,
            1.0 if p is None else _unit(p, same, gap),
            cfg.radius,
            None if cfg.proprio_dims is None else list(cfg.proprio_dims),
            episode if scenes is not None else None,
            scenes,
            cfg.scene_episodes if scenes is not None else 0,
            cfg.proprio_only,
            dist_dims,
        )
        first = np.flatnonzero(same)
        src, dst, w = [first], [first + 1], [gap.astype(np.float64)]
        k = min(cfg.neighbours + 1, m)
        ep_t = torch.from_numpy(episode)
        for lo in range(0, m, 2048):  # blockwise k-NN: O(M^2) time, O(2048 M) memory
            block = z[lo : lo + 2048]
            pb = None if p is None else p[lo : lo + 2048]
            d = graph._steps(block, pb)
            if cfg.across_episodes:  # own episode (self included) out of the running
                d = d.masked_fill(ep_t[lo : lo + 2048, None] == ep_t[None, :], float("inf"))
            dist, idx = d.topk(k, dim=1, largest=False)
            skip = 0 if cfg.across_episodes else 1  # else the first is the node itself
            dist, idx = dist[:, skip : k - 1 + skip], idx[:, skip : k - 1 + skip]
            dist, idx = dist.numpy().ravel(), idx.numpy().ravel()
            rows = np.repeat(np.arange(lo, lo + len(block)), k - 1)
            keep = dist <= cfg.radius
            for a, b in ((rows, idx), (idx, rows)):  # latent links go both ways
                src.append(a[keep])
                dst.append(b[keep])
                w.append(np.maximum(dist[keep], 1e-3))
        graph.edges = _shortest_unique(np.concatenate(src), np.concatenate(dst), np.concatenate(w))
        return graph

    @property
    def nodes(self) -> int:
        return len(self.z)

    def _steps(self, z: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor:
        """Distances (B, M) from latents z (B, D) (and proprio p) to every node, in env steps."""
        if self.proprio_only:
            if p is None:
                raise ValueError(
                    "these landmarks match on proprio alone (built with --proprio-only): pass "
                    "the observation's proprio"
                )
            return _pairwise(p, self.p) / self.punit
        k = self.dist_dims
        d = _pairwise(z[:, :k], self.z[:, :k]) / self.unit
        if self.p is not None and p is not None:
            d = torch.maximum(d, _pairwise(p, self.p) / self.punit)
        return d

    def steps_to(self, z: torch.Tensor, proprio: Any = None) -> np.ndarray:
        """Distance (M,) from one observation's latent (and proprio) to every node, in steps."""
        z = z.detach().flatten()[None].float().cpu()
        p = None
        if proprio is not None and self.p is not None:
            p = torch.as_tensor(np.asarray(proprio)).float()
            p = (p if self.pdims is None else p[self.pdims])[None]
        d = self._steps(z, p)[0].numpy()
        if self.allowed is not None:
            d = np.where(self.allowed, d, np.inf)  # other scenes' frames are out of reach
        return d

    def match_scene(self, pixels: Any) -> np.ndarray | None:
        """Nodes of the ``scene_episodes`` episodes whose thumbnail is nearest ``pixels``'
        (None: the graph has no thumbnails, or pixels is None: every node)."""
        if self.scenes is None or pixels is None or not self.scene_episodes:
            return None
        side = int(round(self.scenes.shape[1] ** 0.5))
        d = (self.scenes - scene_thumbnail(pixels, side)).abs().mean(1).numpy()
        keep = np.argsort(d, kind="stable")[: self.scene_episodes]
        return np.isin(self.episode, keep)

    def _attach(self, d: np.ndarray) -> np.ndarray:
        """Nodes within ``radius`` of a query with distances ``d`` (at least the nearest)."""
        near = np.flatnonzero(d <= self.radius)
        return near if near.size else np.array([int(np.argmin(d))])

    def reset(self, z_goal: torch.Tensor, proprio: Any = None, pixels: Any = None) -> None:
        """One Dijkstra from the goal over the reversed graph: each node's steps-to-goal.

        ``pixels``: the goal image; a graph with scene thumbnails then plans only through the
        episodes whose static scene matches it."""
        m = self.nodes
        self.allowed = self.match_scene(pixels)
        dist_goal = self.steps_to(z_goal, proprio)
        near = self._attach(dist_goal)
        d = dist_goal[near]
        s, t, w = self.edges
        if self.allowed is not None:
            inside = self.allowed[s] & self.allowed[t]
            s, t, w = s[inside], t[inside], w[inside]
        # reversed edges (t -> s), plus a virtual goal node m linked to the nodes near the goal
        rows = np.concatenate([t, np.full(near.size, m)])
        cols = np.concatenate([s, near])
        vals = np.concatenate([w, np.maximum(d, 1e-3)])
        g = coo_matrix((vals, (rows, cols)), shape=(m + 1, m + 1)).tocsr()
        dist, pred = dijkstra(g, indices=m, return_predecessors=True)
        self.to_goal = dist[:m]
        self.next_hop = pred[:m]  # on the reversed graph a node's predecessor is its next hop
        self.goal_nodes = set(near.tolist())

    def path_from(self, z: torch.Tensor, proprio: Any = None) -> list[int]:
        """Nodes of the shortest path from z's best entry node to the goal ([] if none)."""
        return self._path(self.steps_to(z, proprio))

    def _path(self, d: np.ndarray) -> list[int]:
        """The path from the entry node of a query with node distances ``d``."""
        if self.to_goal is None:
            raise RuntimeError("LandmarkGraph.reset(z_goal) must be called before planning")
        near = self._attach(d)
        total = d[near] + self.to_goal[near]
        if not np.isfinite(total).any():
            return []
        node = int(near[np.argmin(total)])
        path = [node]
        while node not in self.goal_nodes:
            node = int(self.next_hop[node])
            if not 0 <= node < self.nodes:
                break
            path.append(node)
        return path

    def subgoal(
        self, z: torch.Tensor, lookahead: float, proprio: Any = None, along_path: bool = False
    ) -> tuple[torch.Tensor | None, float]:
        """The first node on the path at least ``lookahead`` steps from z (None: aim at the
        goal itself), and the graph's steps-to-goal from z's entry node.

        Steps from z are z's distance to the node (default), or with ``along_path`` the path's
        own length up to it (entry distance plus edge weights): where the metric calls states
        near that are many steps apart (a cube on the table and the same cube lifted), the
        path's length does not skip the steps between (descend, close, lift)."""
        d = self.steps_to(z, proprio)  # one distance computation serves entry and subgoal
        path = self._path(d)
        if not path:
            return None, float("inf")
        if along_path:
            far = np.flatnonzero(
                d[path[0]] + self.to_goal[path[0]] - self.to_goal[path] >= lookahead
            )
        else:
            far = np.flatnonzero(d[path] >= lookahead)
        left = float(self.to_goal[path[0]])
        return (None, left) if far.size == 0 else (self.z[path[int(far[0])]], left)

    # ---- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, manifest: dict[str, Any]) -> None:
        s, t, w = self.edges
        tensors = {
            "z": self.z.half(),  # float16 halves the file; distances are taken in float32
            "src": torch.from_numpy(s.astype(np.int32)),
            "dst": torch.from_numpy(t.astype(np.int32)),
            "weight": torch.from_numpy(w.astype(np.float32)),
        }
        if self.p is not None:
            tensors["proprio"] = self.p.half()
        if self.scenes is not None:
            tensors["scenes"] = (self.scenes * 255).round().to(torch.uint8)  # grey levels
            tensors["episode"] = torch.from_numpy(self.episode.astype(np.int32))
        scales = {
            "unit": self.unit,
            "punit": self.punit,
            "radius": self.radius,
            "proprio_dims": self.pdims,
            "scene_episodes": self.scene_episodes,
            "proprio_only": self.proprio_only,
            "dist_dims": self.dist_dims,
        }
        checkpoint.write(path, tensors, {**manifest, **scales, "nodes": self.nodes}, FORMAT)

    @classmethod
    def load(cls, path: str | os.PathLike, model_sha256: str | None = None) -> LandmarkGraph:
        """Read a graph; refuse one encoded with a different world model than ``model_sha256``."""
        hint = "build one with python -m agent.build_landmarks"
        manifest = checkpoint.read_manifest(path, FORMAT, hint)
        if model_sha256 is not None and manifest.get("model_sha256") != model_sha256:
            raise checkpoint.CheckpointError(
                f"landmarks {path} were encoded with another world model "
                f"(sha256 {str(manifest.get('model_sha256'))[:12]}..., checkpoint has "
                f"{model_sha256[:12]}...): rebuild them with python -m agent.build_landmarks"
            )
        t = checkpoint.load_tensors(path)
        edges = (
            t["src"].numpy().astype(np.int64),
            t["dst"].numpy().astype(np.int64),
            t["weight"].numpy().astype(np.float64),
        )
        return cls(
            t["z"],
            edges,
            manifest["unit"],
            t.get("proprio"),
            manifest["punit"],
            manifest["radius"],
            manifest.get("proprio_dims"),
            None if "episode" not in t else t["episode"].numpy(),
            None if "scenes" not in t else t["scenes"].float() / 255,
            int(manifest.get("scene_episodes") or 0),
            bool(manifest.get("proprio_only", False)),
            manifest.get("dist_dims"),
        )


def build(
    model: torch.nn.Module,
    episodes: Iterable[dict[str, np.ndarray]],
    cfg: LandmarkConfig,
    batch: int = 512,
) -> LandmarkGraph:
    """Encode every ``stride``-th frame of ``episodes`` (dicts with pixels, proprio)."""
    latents, episode, step, proprio, scenes = [], [], [], [], []
    with torch.no_grad():
        for e, ep in enumerate(episodes):
            if cfg.scene_size:
                scenes.append(scene_thumbnail(ep["pixels"], cfg.scene_size))
            idx = np.arange(0, len(ep["pixels"]), cfg.stride)
            px = np.asarray(ep["pixels"][idx])
            pr = torch.from_numpy(np.asarray(ep["proprio"][idx], np.float32))
            for lo in range(0, len(px), batch):
                z = model.encode(torch.from_numpy(px[lo : lo + batch]), pr[lo : lo + batch])
                latents.append(z.flatten(1))
            episode.append(np.full(len(idx), e))
            step.append(idx)
            if cfg.use_proprio:
                dims = cfg.proprio_dims
                proprio.append(pr if dims is None else pr[:, list(dims)])
    return LandmarkGraph.from_frames(
        torch.cat(latents),
        np.concatenate(episode),
        np.concatenate(step),
        cfg,
        torch.cat(proprio) if cfg.use_proprio else None,
        torch.stack(scenes) if cfg.scene_size else None,
        _image_dims(model, cfg),
    )


def _image_dims(model: torch.nn.Module, cfg: LandmarkConfig) -> int | None:
    """The size of the latent's image part, for an image_only graph (checked here)."""
    if not cfg.image_only:
        return None
    if not model.cfg.proprio_state:
        raise ValueError(
            "landmarks: --image-only needs a model.proprio_state checkpoint (its latent has a "
            "proprio part to leave out); this model's latent is the image alone: drop the flag"
        )
    return int(model.cfg.latent_dim)


def for_checkpoint(landmarks: str | None, ckpt: str | os.PathLike) -> LandmarkGraph | None:
    """The graph at ``landmarks`` (None: no graph), checked against the world model ``ckpt``."""
    if not landmarks:
        return None
    sha = checkpoint.digest(checkpoint.paths(ckpt)[0])
    return LandmarkGraph.load(landmarks, model_sha256=sha)
