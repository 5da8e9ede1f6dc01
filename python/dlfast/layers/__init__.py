"""Keras-style layers; every one has forward/backward for hand-written training loops."""

from .base import Layer
from .core import Activation, Dense, Flatten, Input, ReLU

__all__ = ["Layer", "Input", "Dense", "Activation", "ReLU", "Flatten"]
