"""The backend interface: one module per device with the same entry points.

- ``dlfast.backend.cpu``: dlfast._core's kernels themselves, and the model-level steps on
  NumPy arrays.
- ``dlfast.backend.cuda``: the same names and signatures on device arrays (dlfast._cuda),
  each layer's outputs in buffers cached per shape, and the model-level steps on the device.

Every layer's ``call_forward`` / ``call_backward`` calls its kernels as
``self.backend.<kernel>(...)`` on the arrays ``self.arrays`` (``(weights, grads)``); every
model's train step, ``fit``, ``evaluate`` and ``predict`` call ``self._runner.<step>(...)``.
On the CPU ``backend`` is the module ``cpu`` and ``arrays`` is ``(self.weights, self.grads)``;
``model.to('cuda')`` gives each layer a ``cuda.Kernels`` and the device views of its arrays
(and the model a ``cuda.Runner``), ``model.to('cpu')`` puts them back. The conventions, the
same on both: inputs first, the result returned, weight gradients added into (or, with
``accumulate=False``, written over) the gradient arrays passed."""
