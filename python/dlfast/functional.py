"""The functional model: ``dlfast.Model(inputs, outputs)`` on a graph of layer calls.

    x = Input((8, 8, 1))
    y = Conv2D(8, 3, padding="same", activation="relu")(x)
    z = Add()([x, y])                       # a residual join: y + x
    model = dlfast.Model(x, z)

Calling a layer on an Input (or on another call's symbolic output) builds it and records the
call (layers/symbolic.py); the model walks back from its output to its input, orders the
calls so that each comes after those it depends on, and runs them as a list of steps over
numbered slots (slot 0 is the model's input). Backward runs the steps in reverse and sums
the gradients that reach a slot from several layers (the skip path and the main path of a
residual block). One input and one output; each layer appears once in the graph (a layer
keeps one forward cache, so sharing a layer between two calls is refused)."""

from .layers.base import Layer
from .layers.core import Input
from .layers.symbolic import SymbolicTensor, as_symbolic
from .models import Model
from . import registry, saving


class Functional(Model):
    """A model over a graph of layer calls, from one Input to one output tensor."""

    runs_on_cuda = True  # model.to('cuda') takes it (dlfast.backend.cuda)

    def __init__(self, inputs, outputs, name=None):
        source, target = _single(inputs, "inputs"), _single(outputs, "outputs")
        if not isinstance(source.layer, Input):
            raise ValueError(f"Model: inputs must be an Input (or its output), got the output "
                             f"of layer '{source.layer.name}'")
        super().__init__(name=name, dtype=source.dtype)
        calls = _ordered_calls(source, target)
        if not calls:
            raise ValueError("Model: outputs is the input itself; the model has no layers")
        names = [source.layer.name] + [t.layer.name for t in calls]
        for layer_name in names:
            if names.count(layer_name) > 1:
                raise ValueError(f"Model: two layers are named '{layer_name}'; names must be "
                                 f"unique in a model (they connect the layers in its config)")
        self.layers = [source.layer] + [t.layer for t in calls]
        # steps: (layer, input slots, output slot), slot k holding tensor k of [source] + calls
        slot = {id(source): 0}
        slot.update((id(t), k + 1) for k, t in enumerate(calls))
        self._steps = [(t.layer, [slot[id(i)] for i in t.inputs], k + 1)
                       for k, t in enumerate(calls)]
        self._inbound = {t.layer: [i.layer for i in t.inputs] for t in calls}
        self._inbound[source.layer] = []
        self.input_shape = source.shape[1:]
        self.output_shape = target.shape[1:]
        self.built = True

    # --- structure ------------------------------------------------------------------------
    def build(self, input_shape=None):
        if input_shape is not None:
            Layer.build(self, input_shape)  # built at construction: checks the shape matches

    def compute_output_shape(self, input_shape):
        self.build(input_shape)
        return self.output_shape

    def _output_layer(self):
        return self._steps[-1][0]

    def _inbound_layers(self):
        return self._inbound

    # --- forward / backward ---------------------------------------------------------------
    def call_forward(self, x, training, act=None):
        values = [x] + [None] * len(self._steps)
        last = len(self._steps) - 1
        for k, (layer, ins, out) in enumerate(self._steps):
            args = [values[i] for i in ins] if layer.multiple_inputs else values[ins[0]]
            if act is not None and k == last:
                values[out] = layer.call_forward(args, training, act=act)
            else:
                values[out] = layer.call_forward(args, training)
        return values[-1]

    def call_backward(self, dy, need_dx=True, accumulate=True):
        """Backward through the steps in reverse; the gradient of a slot read by several
        layers is the sum of what each hands back (added out of place: Add hands the same dy
        array to each of its inputs)."""
        grads = [None] * len(self._steps) + [dy]
        for layer, ins, out in reversed(self._steps):
            g, grads[out] = grads[out], None
            if layer.multiple_inputs:
                dxs = layer.call_backward(g, True, accumulate)
            else:
                dxs = [layer.call_backward(g, need_dx or ins[0] != 0, accumulate)]
            for i, dx in zip(ins, dxs):
                if dx is not None:
                    # a new array (a may be the very array Add handed to another input too)
                    grads[i] = dx if grads[i] is None else \
                        self.backend.add(grads[i], dx, ("slot", i))
        return grads[0] if need_dx else None

    # --- configuration --------------------------------------------------------------------
    def get_config(self):
        """name and the layers in order, each with the names of the layers feeding it."""
        config = {"name": self.name,
                  "layers": [{**saving.serialize(layer),
                              "inbound": [s.name for s in self._inbound[layer]]}
                             for layer in self.layers]}
        if not self.trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild the layers and call them on each other as the config's "inbound" says."""
        config = dict(config)
        outputs = {}
        first = None
        for entry in config.pop("layers"):
            layer = saving.deserialize(entry, custom_objects)
            if isinstance(layer, Input):
                outputs[layer.name] = layer.output
                first = first or layer.output
                continue
            try:
                inbound = [outputs[n] for n in entry["inbound"]]
            except KeyError as e:
                raise ValueError(f"Model config: layer '{layer.name}' takes the output of "
                                 f"{e}, which no earlier layer gives") from None
            outputs[layer.name] = layer(inbound if layer.multiple_inputs else inbound[0])
        if first is None or len(outputs) < 2:
            raise ValueError("Model config: expected an Input followed by layers")
        return cls(first, list(outputs.values())[-1], **config)


def _single(tensors, what):
    """The one symbolic tensor in `tensors` (a tensor, an Input, or a list of one)."""
    t = as_symbolic(tensors)
    if isinstance(t, list):
        if len(t) != 1:
            raise ValueError(f"Model: one {what[:-1]} is supported, got {len(t)} {what}")
        t = t[0]
    if not isinstance(t, SymbolicTensor):
        raise TypeError(f"Model: {what} must come from Input() and calls of layers on it, got "
                        f"{type(tensors).__name__}")
    return t


def _ordered_calls(source, target):
    """The layer calls between source and target, each after the calls it depends on
    (depth-first from the target, inputs in order). Raises when the graph reaches an Input
    other than the source, or when a layer is called twice."""
    order, seen, layers = [], set(), {}
    stack = [(target, False)]
    while stack:
        t, inputs_done = stack.pop()
        if t is source or (id(t) in seen and not inputs_done):
            continue
        if inputs_done:
            order.append(t)
            continue
        seen.add(id(t))
        if not t.inputs:
            raise ValueError(f"Model: the graph is disconnected: the output depends on Input "
                             f"'{t.layer.name}', which is not the model's input "
                             f"'{source.layer.name}'")
        if id(t.layer) in layers:
            raise ValueError(f"Model: layer '{t.layer.name}' is called twice in the graph; a "
                             f"layer keeps one forward cache, so it cannot be shared")
        layers[id(t.layer)] = t
        stack.append((t, True))
        stack.extend((i, False) for i in reversed(t.inputs))
    return order


registry.register(Functional)
registry.register(Functional, "Model")  # Keras files name a functional model "Functional"/"Model"
