"""Symbolic tensors: what calling a layer on an ``Input`` returns, so that a functional model
(``dlfast.Model(inputs, outputs)``) can be declared as Keras declares it. A symbolic tensor
holds no data, only its shape, dtype and the layer call that produces it; the model walks
these back from its output to find the graph."""


class SymbolicTensor:
    """The future output of ``layer`` called on ``inputs`` (a list of symbolic tensors; empty
    for an Input). ``shape`` starts with None, the batch axis, as Keras prints it."""

    def __init__(self, shape, dtype, layer, inputs):
        self.shape = (None,) + tuple(shape)
        self.dtype = dtype
        self.layer = layer
        self.inputs = list(inputs)

    def __repr__(self):
        return (f"<SymbolicTensor shape={self.shape} dtype={self.dtype.name} "
                f"from {self.layer.name!r}>")


def as_symbolic(x):
    """x's symbolic tensor (an Input layer stands for its output), a list of them for a list,
    or None when x is data. A list mixing both is an error."""
    if isinstance(x, SymbolicTensor):
        return x
    output = getattr(x, "output", None)  # an Input layer stands for its output
    if isinstance(output, SymbolicTensor) and output.layer is x and not output.inputs:
        return output
    if isinstance(x, (list, tuple)) and x:
        items = [as_symbolic(item) for item in x]
        if all(t is not None for t in items):
            return items
        if any(t is not None for t in items):
            raise TypeError("a layer was called on a list that mixes symbolic tensors (from "
                            "Input) and data; pass one or the other")
    return None
