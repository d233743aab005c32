"""World-model configuration (mirrored by ``configs/model/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

ENCODERS = ("conv", "keypoints", "vit")
COST_SCALES = ("frames", "steps")  #: ``ModelConfig.cost_scale``: how slow features are scaled
DECODERS = ("conv", "heatmaps")  #: ``ModelConfig.decoder``: how latents are drawn as pixels


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of encoder + predictor. Derived sizes (action/proprio dims) come from data."""

    #: conv (global latent, (B, D)) | keypoints (global latent of D/2 image points, (B, D)) |
    #: vit (patch tokens, (B, P, D))
    encoder: str = "conv"
    latent_dim: int = 64  #: D: size of the global latent or of each patch token
    width: int = 32  #: conv, keypoints: channels of the first layer (doubles); vit: token width
    image_size: int = 64  #: input images are (image_size, image_size, 3)
    patch_size: int = 8  #: vit only: P = (image_size / patch_size) ** 2 tokens
    vit_depth: int = 2  #: vit only: transformer blocks
    predictor_hidden: int = 128  #: width of the predictor MLP / transformer MLP
    predictor_layers: int = 2  #: hidden layers of the predictor
    history: int = 1  #: latents of context the predictor sees (1 = Markov)
    #: env steps per predictor step: the predictor maps a latent and the ``frameskip`` actions
    #: that follow it to the latent ``frameskip`` steps later (DINO-WM's frameskip), so a
    #: rollout over T env steps costs T / frameskip predictor calls
    frameskip: int = 1
    action_dim: int = 2  #: A (from the dataset's action space)
    proprio_dim: int = 4  #: proprio size (from the dataset)
    #: global latent only (conv, keypoints): the latent also carries the robot's normalized
    #: proprio, so the predictor sees it and predicts it (DINO-WM's proprio concat); encode()
    #: then needs the proprio
    proprio_state: bool = False
    proprio_scale: float = 1.0  #: multiplies the normalized proprio inside the latent
    #: global latent only: the planning cost measures the image latent over its k slowest
    #: linear features (slow feature analysis on the training video, ``agent.slow_features``)
    #: instead of all of it; 0 = plain latent distance
    cost_features: int = 0
    #: with ``cost_features``: how each slow feature is scaled. ``frames``: unit variance over
    #: the training frames (each feature counts alike); ``steps``: unit variance of its one-step
    #: change (a distance counted in typical steps, so a slower feature weighs more and a jittery
    #: one less; one common factor then brings the features' mean frame variance to 1)
    cost_scale: str = "frames"
    #: with ``cost_features``, finetuned models: the slowness also counts the predictor's
    #: rollout error (C v = r (S + E) v, E its error covariance on training windows), so the
    #: features are the slow directions the predictor also gets right; without it the slowest
    #: directions can be those it predicts worst, and the planner then chases its errors
    cost_predictable: bool = False
    #: with ``cost_features``: the slowness also counts the part of the latent the robot's own
    #: proprio explains (C v = r (S + P) v, P the covariance of its quadratic regression on the
    #: proprio), so the features are the slow directions of the *scene* and not of the robot: an
    #: arm in view moves as slowly as the cube it pushes, and its state is in the proprio anyway
    cost_exclude_proprio: bool = False
    #: keypoints with ``cost_features`` (even): the cost measures the ``cost_features / 2``
    #: points whose place the robot's proprio explains least (the same regression as
    #: ``cost_exclude_proprio``), their image coordinates as they are: with a robot in view,
    #: the points on the scene's objects and none on the arm (no slowness, no mixing)
    cost_points: bool = False
    #: keypoints only: the image is this many views stacked top to bottom, each
    #: ``image_size / views`` rows high (``arm_pick_place_2view``: 2); the points are split
    #: evenly among the views and each one's soft-argmax runs within its own view
    views: int = 1
    #: pretrain with ``weights.reconstruct``: the pixel decoder also reads the robot's proprio,
    #: so a robot in view can be drawn from its own state and the latent is left the rest of
    #: the scene to hold (the cube beside the arm) for the reconstruction to need
    decoder_proprio: bool = False
    #: the pixel decoder (videos of imagined futures; the pretrain's ``weights.reconstruct``).
    #: conv: a linear layer and transposed convs from the whole latent. heatmaps (keypoints
    #: only): each point drawn as a Gaussian blob at its place, then convs (Jakab et al. 2018),
    #: so a point pays off wherever it sits, on a small cube as on the arm, where a linear layer
    #: from coordinates to a picture draws what most pixels show and little else
    decoder: str = "conv"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(
                f"model.encoder={self.encoder!r} is unknown: use one of {', '.join(ENCODERS)}"
            )
        if self.encoder == "keypoints" and self.latent_dim % 2:
            raise ValueError(
                f"model.latent_dim={self.latent_dim} with model.encoder=keypoints must be even "
                "(two coordinates per point)"
            )
        for name in (
            "latent_dim",
            "width",
            "predictor_hidden",
            "predictor_layers",
            "history",
            "action_dim",
            "frameskip",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name}={getattr(self, name)} must be >= 1")
        if self.frameskip > 1 and self.history > 1:
            raise ValueError(
                f"model.frameskip={self.frameskip} with model.history={self.history} is not "
                "supported: use one of the two (history=1 or frameskip=1)"
            )
        if self.proprio_state and not self.global_latent:
            raise ValueError(
                "model.proprio_state=true needs a global latent: model.encoder=conv or keypoints"
            )
        if self.proprio_state and self.proprio_dim < 1:
            raise ValueError(
                "model.proprio_state=true needs a dataset with proprio (proprio_dim is 0): "
                "collect one with agent.collect or set model.proprio_state=false"
            )
        if self.proprio_state and self.proprio_scale <= 0:
            raise ValueError(f"model.proprio_scale={self.proprio_scale}: use a number > 0")
        if not 0 <= self.cost_features <= self.latent_dim:
            raise ValueError(
                f"model.cost_features={self.cost_features} must be between 0 (plain latent "
                f"distance) and model.latent_dim={self.latent_dim}"
            )
        if self.cost_features and not self.global_latent:
            raise ValueError(
                "model.cost_features > 0 needs a global latent: model.encoder=conv or keypoints "
                "(or model.cost_features=0 for vit)"
            )
        if self.cost_scale not in COST_SCALES:
            raise ValueError(
                f"model.cost_scale={self.cost_scale!r} is unknown: use one of "
                f"{', '.join(COST_SCALES)}"
            )
        if self.cost_predictable and not self.cost_features:
            raise ValueError(
                "model.cost_predictable=true weighs slow features: set model.cost_features > 0 "
                "too (or model.cost_predictable=false)"
            )
        if self.cost_exclude_proprio and not self.cost_features:
            raise ValueError(
                "model.cost_exclude_proprio=true shapes slow features: set model.cost_features > 0 "
                "too (or model.cost_exclude_proprio=false)"
            )
        if self.cost_points and (
            self.encoder != "keypoints"
            or not self.cost_features
            or self.cost_features % 2
            or self.cost_predictable
            or self.cost_exclude_proprio
        ):
            raise ValueError(
                "model.cost_points=true picks keypoints by the proprio: use it with "
                "model.encoder=keypoints, an even model.cost_features > 0 (two coordinates per "
                "point) and model.cost_predictable=false model.cost_exclude_proprio=false"
            )
        if self.views < 1 or (self.views > 1 and self.encoder != "keypoints"):
            raise ValueError(
                f"model.views={self.views}: use 1, or more with model.encoder=keypoints (each "
                "view's points are found within that view)"
            )
        if (self.latent_dim // 2) % self.views or (self.image_size // 2) % self.views:
            raise ValueError(
                f"model.views={self.views} must divide the points (model.latent_dim / 2 = "
                f"{self.latent_dim // 2}) and the half-resolution rows ({self.image_size // 2})"
            )
        if self.decoder not in DECODERS:
            raise ValueError(
                f"model.decoder={self.decoder!r} is unknown: use one of {', '.join(DECODERS)}"
            )
        if self.decoder == "heatmaps" and (self.encoder != "keypoints" or self.decoder_proprio):
            raise ValueError(
                "model.decoder=heatmaps draws keypoints: use it with model.encoder=keypoints and "
                "model.decoder_proprio=false (or model.decoder=conv)"
            )
        if self.image_size % 8 or (self.encoder == "vit" and self.image_size % self.patch_size):
            raise ValueError(
                f"model.image_size={self.image_size} must be a multiple of 8 (and of patch_size "
                f"{self.patch_size} for vit)"
            )

    @property
    def global_latent(self) -> bool:
        """One latent vector per frame (conv, keypoints) rather than patch tokens (vit)."""
        return self.encoder != "vit"

    @property
    def proprio_stats(self) -> bool:
        """The model normalizes proprio with stats from the data (``proprio_state``: inside the
        latent; ``decoder_proprio``: for the reconstruction)."""
        return self.proprio_state or self.decoder_proprio

    @property
    def state_dim(self) -> int:
        """Size of each latent token as the predictor sees it (image latent [+ proprio])."""
        return self.latent_dim + (self.proprio_dim if self.proprio_state else 0)

    @property
    def tokens(self) -> int:
        """P: number of latent tokens per frame (1 for a global latent: conv, keypoints)."""
        return 1 if self.global_latent else (self.image_size // self.patch_size) ** 2
