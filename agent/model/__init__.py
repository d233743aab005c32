"""The JEPA world model: encoders, action-conditioned predictor, and the verb API."""

from agent.model.config import ModelConfig
from agent.model.world_model import WorldModel

__all__ = ["ModelConfig", "WorldModel"]
