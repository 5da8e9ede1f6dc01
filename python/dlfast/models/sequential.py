"""Sequential: a stack of layers, each feeding the next (Keras's keras.Sequential)."""

from .. import registry, saving
from ..layers.base import Layer, normalize_shape
from ..layers.core import Input
from .model import Model


class Sequential(Model):
    """A stack of layers, each feeding the next."""

    runs_on_cuda = True  # model.to('cuda') takes it (dlfast.backend.cuda)

    def __init__(self, layers=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._dtype_given = dtype is not None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (an ``Input`` may only come first: it sets the input shape)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: add() expects a dlfast layer, got "
                            f"{type(layer).__name__}")
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError(f"{self.name}: an Input must come first")
            self.input_shape = layer.shape
            if layer.dtype_given or not self._dtype_given:
                self.dtype = layer.dtype
            self._dtype_given = self._dtype_given or layer.dtype_given
            return
        if self.built:
            raise ValueError(f"{self.name}: cannot add layers to a built model")
        if layer.multiple_outputs:
            raise ValueError(layer._one_output_message("a Sequential model"))
        if any(layer is other for other in self.layers):
            raise ValueError(f"{self.name}: layer '{layer.name}' is already in the model; a "
                             f"layer keeps one forward cache, so it cannot appear twice")
        if not self.layers and self.input_shape is None:
            if isinstance(layer, Model) and layer.input_shape is not None:  # a model first
                self.input_shape = layer.input_shape  # (a GAN's generator): its input
                if not self._dtype_given:
                    self.dtype = layer.dtype
            elif layer._declared_input_shape:
                self.input_shape = layer._declared_input_shape
        self.layers.append(layer)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch axis excluded; default: the
        shape an ``Input`` or the first layer's ``input_shape=`` declared)."""
        if input_shape is None:
            input_shape = self.input_shape
            if input_shape is None:
                raise ValueError(f"{self.name}: the input shape is unknown; start the model with "
                                 f"Input(shape), pass input_shape= to the first layer, or call "
                                 f"build(shape) or fit() first")
        input_shape = normalize_shape(input_shape)
        if self.built:
            return super().build(input_shape)  # checks that the shape matches
        if not self.layers:
            raise ValueError(f"{self.name}: the model has no layers")
        shape = input_shape
        for layer in self.layers:
            if self._dtype_given and not layer.built:
                layer.dtype = self.dtype
            layer.build(shape)
            shape = layer.output_shape
        self.dtype = self.layers[0].dtype
        self.input_shape, self.output_shape = input_shape, shape
        self.built = True

    def _output_layer(self):
        return self.layers[-1]

    def call_forward(self, x, training, act=None):
        layers = self.layers
        for k in range(len(layers) - 1):
            x = layers[k].call_forward(x, training)
        if act is None:
            return layers[-1].call_forward(x, training)
        return layers[-1].call_forward(x, training, act=act)

    def call_backward(self, dy, need_dx=True, accumulate=True):
        layers = self.layers
        for k in range(len(layers) - 1, -1, -1):
            dy = layers[k].call_backward(dy, need_dx or k > 0, accumulate)
        return dy

    def get_config(self):
        """name, dtype (None when not given: the layers' own win) and the layers, led by an
        Input when the input shape is known."""
        layers = list(self.layers)
        if self.input_shape is not None:
            layers.insert(0, Input(self.input_shape, dtype=self.dtype if self._dtype_given
                                   else None, name=f"{self.name}_input"))
        config = {"name": self.name, "dtype": self.dtype.name if self._dtype_given else None,
                  "layers": [saving.serialize(layer) for layer in layers]}
        if not self.trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model ``get_config`` describes (weights are set separately)."""
        config = dict(config)
        layers = [saving.deserialize(c, custom_objects) for c in config.pop("layers")]
        return cls(layers, **config)


registry.register(Sequential)
