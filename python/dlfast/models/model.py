"""The Model base class: compile, fit, evaluate, predict, train_on_batch, summary, files, and
the flat parameter buffers (see the package's docstring)."""

import numpy as np

from .. import _random, losses as losses_module
from .. import metrics as metrics_module, optimizers as optimizers_module, registry, saving
from .. import _fit, _summary
from ..backend import cpu
from ..layers.base import Layer, positive_int, to_array, trainable_version
from ..layers.core import Activation, Dense
from ..ops import LINEAR, LOSSES, labels_array, matching_target_shape

class Model(Layer):
    """What every model shares: the training loop, the flat parameter buffers, summary, files.

    ``Model(inputs, outputs)`` makes a functional model (a ``Functional``, as in Keras).
    Subclasses give ``layers`` (in the order data reaches them), ``build``,
    ``call_forward(x, training, act=None)`` (``act``: an activation code that replaces the
    output layer's own, 0 for logits; the fused loss head uses it), ``call_backward`` and
    ``_output_layer()``."""

    def __new__(cls, *args, **kwargs):
        if cls is Model:  # Model(inputs, outputs): dlfast.functional registered it as "Model"
            cls = registry.classes()["Model"]
        return super().__new__(cls)

    def __init__(self, name=None, dtype=None):
        super().__init__(dtype=dtype, name=name)
        self.layers = []
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self._optimizer_cache = None  # (trainable_version(), grads, weights)
        self.device = "cpu"
        # Where the train step, evaluate and predict run (dlfast.backend): the module cpu, or
        # a dlfast.backend.cuda.Runner after to('cuda')
        self._runner = cpu

    # --- structure ------------------------------------------------------------------------
    def _leaf_layers(self):
        for layer in self.layers:
            if isinstance(layer, Model):
                yield from layer._leaf_layers()
            else:
                yield layer

    @property
    def weights(self):
        """Every layer's weights, in layer order (the arrays themselves, not copies)."""
        return [w for layer in self.layers for w in layer.weights]

    @weights.setter
    def weights(self, value):
        if value:  # Layer.__init__ assigns [] before the layers exist
            raise AttributeError("a model's weights are its layers' weights; use set_weights")

    @property
    def grads(self):
        """Every layer's gradients, parallel to ``weights``."""
        return [g for layer in self.layers for g in layer.grads]

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("a model's grads are its layers' grads")

    @property
    def weight_names(self):
        """``"<layer name>/<weight name>"`` for each entry of ``weights``."""
        return [f"{layer.name}/{n}" for layer in self.layers for n in layer.weight_names]

    @weight_names.setter
    def weight_names(self, value):
        pass

    @property
    def weight_trainable(self):
        """Per weight: trained now. The layers' own flags decide (a model's ``trainable``
        setter sets them all), so a layer unfrozen inside a frozen model trains, as in Keras."""
        return [t and layer.trainable for layer in self._leaf_layers()
                for t in layer.weight_trainable]

    @weight_trainable.setter
    def weight_trainable(self, value):
        pass

    @property
    def trainable(self):
        """Whether the model trains; setting it sets every layer's flag (Keras 3)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Keras 3: sets the flag on every layer of the model (nested models included)."""
        Layer.trainable.fset(self, value)
        for layer in getattr(self, "layers", ()):
            layer.trainable = value

    @property
    def trainable_weights(self):
        """The weights an optimizer step updates now."""
        return [w for w, t in zip(self.weights, self.weight_trainable) if t]

    @property
    def non_trainable_weights(self):
        """The weights no optimizer step touches now (moving statistics, frozen layers)."""
        return [w for w, t in zip(self.weights, self.weight_trainable) if not t]

    def regularization_loss(self):
        """The sum of the layers' regularization penalties."""
        return sum(layer.regularization_loss() for layer in self.layers)

    def add_regularization_grads(self):
        """Add every layer's regularizer gradients into its grads; returns the total penalty."""
        return sum(layer.add_regularization_grads() for layer in self.layers)

    def _ensure_built(self):
        if not self.built:
            self.build()

    def _optimizer_arrays(self):
        """(grads, weights): the arrays one optimizer step updates, the buffers of the layers
        that are trainable now (Layer.optimizer_arrays), in layer order. Rebuilt when any
        layer's trainable flag has been set since the last call, so a flag flipped between
        two steps (the GAN recipe) is honoured at the next one."""
        cache = self._optimizer_cache
        if cache is None or cache[0] != trainable_version():
            grads, weights = [], []
            for layer in self._leaf_layers():
                g, w = layer.optimizer_arrays()
                grads += g
                weights += w
            cache = self._optimizer_cache = (trainable_version(), grads, weights)
        return cache[1], cache[2]

    # --- forward / backward (a model is a layer) ------------------------------------------
    def check_input(self, x, what="input"):
        if not self.built and self.input_shape is None:  # build from the first data seen
            x = to_array(x, self.dtype, self.name, what)
            self.build(x.shape[1:])
        self._ensure_built()
        return super().check_input(x, what)

    def zero_grad(self):
        """Zero the gradients of every layer (nested models included)."""
        for layer in self._leaf_layers():
            layer.zero_grad()

    #: whether model.to('cuda') takes this kind of model (Sequential and functional do)
    runs_on_cuda = False

    def to(self, device):
        """Move the weights and optimizer state to 'cuda' (train, evaluate and predict then
        run on the GPU, NumPy in and out) or back to 'cpu'. Returns the model."""
        from ..backend import cuda
        return cuda.move(self, device)

    # --- training -------------------------------------------------------------------------
    def compile(self, optimizer="sgd", loss=None, metrics=None):
        """Set the optimizer (an instance or a name: 'sgd', 'adam', ...), the loss (an
        instance or a name: 'mse', 'sparse_categorical_crossentropy', ...) and the metrics
        (['accuracy']: the accuracy that matches the loss, as Keras resolves it)."""
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = None if loss is None else losses_module.get(loss)
        metrics = list(metrics or [])
        self.metrics = [metrics_module.get(m, self.loss) for m in metrics]
        self._head_fused = None  # decided at first use, when the model is built

    def _require_compiled(self, what):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss) before {what}()")

    def _fused_head(self):
        """True when the last layer's activation is fused into the loss (from logits)."""
        if self._head_fused is None:
            last = self._output_layer()
            while isinstance(last, Model):  # a nested model's output layer (a GAN's D)
                last = last._output_layer()
            want = self.loss.fuses_with
            self._head_fused = (not self.loss.from_logits and want is not None
                                and isinstance(last, (Dense, Activation))
                                and last.activation == want)
        return self._head_fused

    def _head_forward(self, x, training):
        """Forward to the loss's input: logits when fused, else the model's output."""
        if self._fused_head():
            return self.call_forward(x, training, act=LINEAR)
        return self.call_forward(x, training)

    def _prepare_y(self, y, n, what="y"):
        name = self.loss.kernel_name
        if name == "sparse_categorical_crossentropy":
            if len(self.output_shape) != 1:
                raise ValueError(f"{self.name}: sparse labels need a (batch, classes) output, "
                                 f"the model gives (batch, {self.output_shape})")
            y = labels_array(y, f"{self.name}: {what}", n)
            if y.size and (y.min() < 0 or y.max() >= self.output_shape[0]):
                raise ValueError(f"{self.name}: {what} holds class labels in "
                                 f"[{y.min()}, {y.max()}], the model has "
                                 f"{self.output_shape[0]} classes")
            return y
        y = to_array(y, self.dtype, self.name, what)
        if y.shape[:1] != (n,):
            raise ValueError(f"{self.name}: {what} has {y.shape[0] if y.ndim else 0} samples, "
                             f"x has {n}")
        if y.shape[1:] != self.output_shape:
            want = (n,) + tuple(self.output_shape)
            try:  # Keras's rule: equal shapes, or a trailing axis of 1 more or less
                return y.reshape(matching_target_shape(self.name, y.shape, want, what))
            except ValueError:
                hint = (" (integer class labels need loss='sparse_categorical_crossentropy')"
                        if y.ndim == 1 else "")
                raise ValueError(f"{self.name}: {what} must have shape (batch, "
                                 f"{', '.join(map(str, self.output_shape))}) to match the "
                                 f"model's output, got {y.shape}{hint}; the shapes must be "
                                 f"equal, or differ by a trailing axis of 1") from None
        return y

    def _loss(self, out, y, need_grad):
        """(the loss of outputs ``out`` against targets ``y``, its gradient or None)."""
        return self._runner.loss(LOSSES[self.loss.kernel_name], y, out,
                                 self._head_fused or self.loss.from_logits, need_grad,
                                 self.loss.kernel_param)

    def _train_step(self, x, y):
        """Forward, loss and its gradient, backward (writing the gradients, so there is no
        zero_grad pass), one optimizer step; returns (loss, outputs, targets as the runner
        holds them). An optimizer that re-evaluates the gradient (``needs_closure``, e.g.
        SGDG2) gets a closure doing the same on this batch (see ``_reevaluation``)."""
        run = self._runner
        run.begin_step(self)
        y = run.targets(self, y)
        x = run.inputs(x)

        def forward_backward():
            out = self._head_forward(x, True)  # decides self._head_fused at the first call
            loss, dout = self._loss(out, y, True)
            self.call_backward(dout, need_dx=False, accumulate=False)
            penalty = self.add_regularization_grads()  # Keras: part of the loss
            return (loss + penalty if penalty else loss), out

        if not self.optimizer.needs_closure:
            loss, out = forward_backward()
            run.update(self)
            return loss, out, y
        replay = _random.Replay(self)  # before the step's forward draws its dropout masks
        loss, out = forward_backward()
        run.update(self, closure=lambda: self._reevaluation(forward_backward, replay))
        return loss, out, y

    def _reevaluation(self, forward_backward, replay):
        """forward_backward() again, as a second evaluation of the SAME stochastic objective
        (SGD-G2's probe, Ayadi & Turinici: "on the same mini-batch"): the random generators are
        put back where they stood before the step's own forward, so every Dropout draws the
        same mask; and afterwards the non-trainable weights (BatchNormalization's moving
        statistics) and the generators are put back as the step's forward left them, so a
        step moves the moving statistics once, whatever the optimizer. Returns the loss."""
        state = self.non_trainable_weights
        saved = [w.copy() for w in state]
        after_step_forward = replay.snapshot()
        replay.rewind()
        try:
            return forward_backward()[0]
        finally:
            for w, s in zip(state, saved):
                w[...] = s
            replay.restore(after_step_forward)

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the batch's loss (before the step)."""
        self._require_compiled("train_on_batch")
        x = self.check_input(x)
        y = self._prepare_y(y, x.shape[0])
        return float(self._train_step(x, y)[0])

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0):
        """Train for ``epochs`` passes over (x, y) in batches of ``batch_size``, shuffled
        each epoch (dlfast's generator: ``dlfast.manual_seed``). ``validation_split`` holds
        out the last fraction of the samples (before shuffling, as Keras);
        ``validation_data=(x_val, y_val)`` gives them instead. Returns a
        ``callbacks.History`` whose ``history`` dict holds the per-epoch loss, metrics and
        'val_*' entries."""
        return _fit.fit(self, x, y, batch_size, epochs, verbose, validation_data,
                        validation_split, shuffle, callbacks, initial_epoch)

    def _evaluate_prepared(self, x, y, batch_size):
        run = self._runner
        n = x.shape[0]
        tally = run.tally(self)
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            yb = run.targets(self, y[lo:hi])
            tally.add(self._head_forward(run.inputs(x[lo:hi]), False), yb, hi - lo)
        total, correct = tally.read()
        logs = {"loss": total / max(n, 1) + self.regularization_loss()}
        for m, c in zip(self.metrics, correct):
            logs[m.name] = c / max(n, 1)
        return logs

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, return_dict=False):
        """The loss (and metrics) over (x, y): a float without metrics, else [loss, ...]."""
        self._require_compiled("evaluate")
        batch_size = positive_int(batch_size, "batch_size")
        x = self.check_input(x)
        y = self._prepare_y(y, x.shape[0])
        logs = self._evaluate_prepared(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for x, computed in batches (inference mode)."""
        batch_size = positive_int(batch_size, "batch_size")
        x = self.check_input(x)
        run = self._runner
        outs = [run.to_host(self.call_forward(run.inputs(x[lo:lo + batch_size]), False))
                for lo in range(0, x.shape[0], batch_size)]
        if not outs:
            return np.zeros((0,) + self.output_shape, self.dtype)
        return np.concatenate(outs) if len(outs) > 1 else outs[0].copy()

    # --- description ----------------------------------------------------------------------
    def summary(self, print_fn=None, line_length=None):
        """A Keras-style table: each layer's name (type), output shape and parameter count,
        in the order data reaches them; a functional model adds the "Connected to" column
        (the layers feeding each one, as Keras's ``name[0][0]``)."""
        _summary.print_summary(self, print_fn, line_length)

    def _inbound_layers(self):
        """{layer: the layers whose outputs it takes} for a graph; None for a stack."""
        return None

    def count_params(self):
        """The number of weight values of all layers (built first when the input shape is
        known)."""
        self._ensure_built()
        return int(sum(layer.count_params() for layer in self.layers))

    def get_weights(self):
        """Copies of every weight, in ``weights`` order (from the GPU after ``to('cuda')``)."""
        self._ensure_built()  # a model whose input shape is known builds on first use
        self._runner.pull()
        return super().get_weights()

    def set_weights(self, weights):
        """Write a list in ``get_weights`` order into the layers' arrays (checked first)."""
        self._ensure_built()
        super().set_weights(weights)
        self._runner.push()

    # --- files (saving.py) ----------------------------------------------------------------
    def save(self, filepath, include_optimizer=True):
        """One safetensors file: config, weights, compile settings and, with
        include_optimizer, the optimizer's state; written atomically."""
        self._runner.pull()
        saving.save_model(self, filepath, include_optimizer)

    def save_weights(self, filepath):
        """The weights alone in one safetensors file (``load_weights`` reads it back); a
        name ending in ``.h5`` (``*.weights.h5``) writes Keras 3's weights file, which
        ``keras_model.load_weights`` reads."""
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        """Weights from a file of save_weights or save, matched by position, or from Keras 3's
        ``*.weights.h5`` (matched by Keras's layout); checks them all before writing any."""
        saving.load_weights(self, filepath)


registry.register_model_base(Model)
