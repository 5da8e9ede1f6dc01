"""Keras-style layers; every one has forward/backward for hand-written training loops."""

from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense, Flatten, Input, ReLU
from .merge import Add
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .recurrent import LSTM
from .regularization import Dropout
from .symbolic import SymbolicTensor
from .core import LeakyReLU
from .merge import Concatenate
from .reshaping import Reshape, UpSampling2D, ZeroPadding2D
from .conv import Conv2DTranspose
from .wrappers import Bidirectional
from .rnn import GRU, SimpleRNN
from .sequence import Embedding, LayerNormalization

__all__ = ["Layer", "Input", "Dense", "Activation", "ReLU", "Flatten", "Conv2D",
           "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "LSTM", "Dropout",
           "BatchNormalization", "Add", "SymbolicTensor"]
__all__ += ["UpSampling2D", "ZeroPadding2D", "Reshape", "Concatenate", "LeakyReLU"]
__all__ += ["Conv2DTranspose", "Bidirectional", "GRU", "SimpleRNN", "Embedding",
            "LayerNormalization"]

# Every layer class above may be named in a model file (dlfast.saving reads the registry).
from .. import registry as _registry  # noqa: E402

for _name, _obj in list(globals().items()):
    if isinstance(_obj, type) and issubclass(_obj, Layer) and _obj is not Layer:
        _registry.register(_obj, _name)
