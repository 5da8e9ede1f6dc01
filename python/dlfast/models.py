"""Models: the Model base class holds what every model does (Keras's compile, fit, evaluate,
predict, train_on_batch, summary, save); Sequential (a stack of layers) and the functional
model (``Model(inputs, outputs)``, a graph of layer calls: functional.py) only say how the
data flows. A model is a layer: forward/backward/weights/grads work on it as on any layer.

A model owns no weights: they live in its layers, each layer's trainable weights packed in one
buffer (and its gradients in another) when it is built (Layer._pack_parameters). A layer held
by two models (a GAN's discriminator, alone and inside the combined model) is one set of
arrays, and ``trainable`` is read at every step: an optimizer step is one C++ call over the
buffers of the layers that are trainable now (``_optimizer_arrays``). The training step calls
the layers' kernels directly (their inputs were checked once, at the model's door) and fuses a
final softmax/sigmoid into the cross-entropy (from logits: stable, and one pass fewer)."""

import textwrap

import numpy as np

from . import _core, _random, callbacks as callbacks_module, losses as losses_module
from . import metrics as metrics_module, optimizers as optimizers_module, registry, saving
from ._progress import EpochProgress
from .layers.base import Layer, normalize_shape, positive_int, to_array, trainable_version
from .layers.core import Activation, Dense, Input
from .ops import LINEAR, LOSSES, labels_array, matching_target_shape
from .saving import load_model  # noqa: F401  (dlfast.models.load_model, as in Keras)

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
        self._cuda = None  # the DeviceRunner (dlfast/cuda/training.py) after to('cuda')

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

    def _device_walk(self):
        """The class whose call_forward / call_backward walk this model's layers, which
        model.to('cuda') runs over the layers' device twins; None: this kind of model does not
        run on the GPU."""
        return None

    def to(self, device):
        """Move the weights and optimizer state to 'cuda' (train, evaluate and predict then
        run on the GPU, NumPy in and out) or back to 'cpu'. Returns the model."""
        from .cuda import training
        return training.move(self, device)

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

    def _train_step(self, x, y):
        """Forward, loss and its gradient, backward (writing the gradients, so there is no
        zero_grad pass), one optimizer step. An optimizer that re-evaluates the gradient
        (``needs_closure``, e.g. SGDG2) gets a closure doing the same on this batch (see
        ``_reevaluation``)."""
        def forward_backward():
            out = self._head_forward(x, True)  # decides self._head_fused at the first call
            loss, dout = _core.loss(LOSSES[self.loss.kernel_name], y, out,
                                    self._head_fused or self.loss.from_logits, True,
                                    self.loss.kernel_param)
            self.call_backward(dout, need_dx=False, accumulate=False)
            loss += self.add_regularization_grads()  # Keras: the penalties are part of the loss
            return loss, out

        grads, weights = self._optimizer_arrays()
        if not self.optimizer.needs_closure:
            loss, out = forward_backward()
            self.optimizer.apply(grads, weights)
            return loss, out
        replay = _random.Replay(self)  # before the step's forward draws its dropout masks
        loss, out = forward_backward()
        self.optimizer.apply(grads, weights,
                             closure=lambda: self._reevaluation(forward_backward, replay))
        return loss, out

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
        if self._cuda is not None:
            self._cuda.train_step(x, y)
            return self._cuda.last_loss()
        return float(self._train_step(x, y)[0])

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0):
        """Train for ``epochs`` passes over (x, y) in batches of ``batch_size``, shuffled
        each epoch (dlfast's generator: ``dlfast.manual_seed``). ``validation_split`` holds
        out the last fraction of the samples (before shuffling, as Keras);
        ``validation_data=(x_val, y_val)`` gives them instead. Returns a
        ``callbacks.History`` whose ``history`` dict holds the per-epoch loss, metrics and
        'val_*' entries."""
        self._require_compiled("fit")
        batch_size = positive_int(batch_size, "batch_size")
        epochs = int(epochs)
        x = self.check_input(x)
        y = self._prepare_y(y, x.shape[0])
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if validation_data is None and validation_split > 0:
            n_val = int(len(x) * validation_split)
            if n_val == 0:
                raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples "
                                 f"leaves no validation sample")
            x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
            xv = self.check_input(validation_data[0], "validation input")
            yv = self._prepare_y(validation_data[1], xv.shape[0], "validation y")
        n = x.shape[0]
        if n == 0:
            raise ValueError("fit: x has no samples")
        steps = -(-n // batch_size)
        history = callbacks_module.History()
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        # History last, as Keras: it records what the other callbacks add to the logs (e.g.
        # ReduceLROnPlateau's 'learning_rate').
        cbs = callbacks_module.CallbackList(list(callbacks or []) + [history], self, params)
        history.model = self
        progress = EpochProgress(epochs, steps, verbose)
        self.stop_training = False
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            progress.begin(epoch)
            if shuffle:
                order = _random.generator().permutation(n)
                xs, ys = x[order], y[order]
            else:
                xs, ys = x, y
            total_loss = 0.0
            correct = [0] * len(self.metrics)
            device_sums = self._cuda.new_sums() if self._cuda is not None else None
            seen = 0  # samples trained on this epoch (fewer than n if a callback stops it)
            for step in range(steps):
                lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                if cbs.wants_batches:
                    cbs.on_train_batch_begin(step)
                if device_sums is not None:  # the sums stay on the GPU until the epoch ends
                    self._cuda.train_step(xs[lo:hi], ys[lo:hi], device_sums)
                    loss = self._cuda.last_loss() if cbs.wants_batches else None
                else:
                    loss, out = self._train_step(xs[lo:hi], ys[lo:hi])
                    total_loss += loss * (hi - lo)
                    for i, m in enumerate(self.metrics):
                        correct[i] += m.correct(ys[lo:hi], out, self._head_fused)
                seen = hi
                if cbs.wants_batches:
                    cbs.on_train_batch_end(step, {"loss": float(loss)})
                progress.step(step + 1)
                if self.stop_training:  # Keras: a batch callback (TerminateOnNaN) stops here
                    break
            if device_sums is not None:
                total_loss, correct = self._cuda.read_sums(device_sums)
            logs = {"loss": total_loss / seen}
            for m, c in zip(self.metrics, correct):
                logs[m.name] = c / seen
            if validation_data is not None:
                val = self._evaluate_prepared(xv, yv, batch_size)
                logs.update({"val_" + k: v for k, v in val.items()})
            progress.end(epoch, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return history

    def _evaluate_prepared(self, x, y, batch_size):
        if self._cuda is not None:
            return self._cuda.evaluate(x, y, batch_size)
        n = x.shape[0]
        total, correct = 0.0, [0] * len(self.metrics)
        code = LOSSES[self.loss.kernel_name]
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            out = self._head_forward(x[lo:hi], False)
            loss, _ = _core.loss(code, y[lo:hi], out, self._head_fused or self.loss.from_logits,
                                 False, self.loss.kernel_param)
            total += loss * (hi - lo)
            for i, m in enumerate(self.metrics):
                correct[i] += m.correct(y[lo:hi], out, self._head_fused)
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
        if self._cuda is not None:
            return self._cuda.predict(x, batch_size)
        outs = [self.call_forward(x[lo:lo + batch_size], False)
                for lo in range(0, x.shape[0], batch_size)]
        if not outs:
            return np.zeros((0,) + self.output_shape, self.dtype)
        return np.concatenate(outs) if len(outs) > 1 else outs[0].copy()

    # --- description ----------------------------------------------------------------------
    def summary(self, print_fn=None, line_length=None):
        """A Keras-style table: each layer's name (type), output shape and parameter count,
        in the order data reaches them; a functional model adds the "Connected to" column
        (the layers feeding each one, as Keras's ``name[0][0]``)."""
        self._ensure_built()
        print_fn = print_fn or print
        inbound = self._inbound_layers()
        fractions = _COLUMNS if inbound is None else _COLUMNS_CONNECTED
        widths = [round(f * (line_length or (71 if inbound is None else 100)))
                  for f in fractions]
        total = sum(widths)
        rows = []
        for layer in self.layers:
            shape = "(None, " + ", ".join(map(str, layer.output_shape)) + ")"
            row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
            if inbound is None:
                rows.append([row])
                continue
            sources = [f"{source.name}[0][0]" for source in inbound[layer]] or ["-"]
            rows.append([row + sources[:1]] + [["", "", "", s] for s in sources[1:]])

        def line(cells):
            """A row's printed lines; a cell too long for its column (a long name and type,
            "batch_normalization (BatchNormalization)") wraps at its spaces onto further
            lines, as in Keras's table, so that the columns never run together."""
            parts = [textwrap.wrap(c, w - 1) or [""] for c, w in zip(cells[:3], widths)]
            parts += [[c] for c in cells[3:]]
            texts = []
            for k in range(max(map(len, parts))):
                c = [p[k] if k < len(p) else "" for p in parts]
                text = c[0].ljust(widths[0]) + c[1].ljust(widths[1]) + c[2].rjust(widths[2])
                texts.append(text + "  " + c[3] if len(c) > 3 and c[3] else text)
            return texts

        trainable = sum(w.size for w, t in zip(self.weights, self.weight_trainable) if t)
        total_params = self.count_params()
        nbytes = lambda count: count * self.dtype.itemsize
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * total)
        print_fn(line(["Layer (type)", "Output Shape", "Param #",
                       "Connected to"][:len(widths)])[0])
        print_fn("=" * total)
        for i, lines in enumerate(rows):
            for cells in lines:
                for text in line(cells):
                    print_fn(text)
            if i < len(rows) - 1:
                print_fn("")
        print_fn("=" * total)
        print_fn(f"Total params: {total_params:,} ({_human_bytes(nbytes(total_params))})")
        print_fn(f"Trainable params: {trainable:,} ({_human_bytes(nbytes(trainable))})")
        print_fn(f"Non-trainable params: {total_params - trainable:,} "
                 f"({_human_bytes(nbytes(total_params - trainable))})")
        print_fn("_" * total)

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
        if self._cuda is not None:
            self._cuda.pull()
        return super().get_weights()

    def set_weights(self, weights):
        """Write a list in ``get_weights`` order into the layers' arrays (checked first)."""
        self._ensure_built()
        super().set_weights(weights)
        if self._cuda is not None:
            self._cuda.push()

    # --- files (saving.py) ----------------------------------------------------------------
    def save(self, filepath, include_optimizer=True):
        """One safetensors file: config, weights, compile settings and, with
        include_optimizer, the optimizer's state; written atomically."""
        if self._cuda is not None:
            self._cuda.pull()
        saving.save_model(self, filepath, include_optimizer)

    def save_weights(self, filepath):
        """The weights alone in one safetensors file (``load_weights`` reads it back)."""
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        """Weights from a file of save_weights or save, matched by position; checks them all
        before writing any."""
        saving.load_weights(self, filepath)


registry.register_model_base(Model)


class Sequential(Model):
    """A stack of layers, each feeding the next."""

    def _device_walk(self):
        return Sequential  # a subclass's own call_forward is not run on the device

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


# summary's column widths as fractions of the line: 71 characters by default (33, 26, 12), or
# 100 with the "Connected to" column (33, 26, 12, 29)
_COLUMNS = (33 / 71, 26 / 71, 12 / 71)
_COLUMNS_CONNECTED = (0.33, 0.26, 0.12, 0.29)


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n:.2f} B"
        n /= 1024.0


registry.register(Sequential)
