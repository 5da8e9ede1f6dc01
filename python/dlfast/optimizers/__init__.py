"""Optimizers with Keras's names, defaults and formulas; each step is one fused C++ call over
all the parameters it is given (a model gives one flat buffer per dtype).

An optimizer whose ``needs_closure`` is True (SGDG2) evaluates the gradient a second time on
the same batch: ``apply(grads, weights, closure=f)`` where ``f()`` re-runs forward and backward
at the weights as they are when it is called, writes the fresh gradients into the arrays of
``grads`` and returns the loss. A model's ``fit`` and ``train_on_batch`` pass one themselves,
which evaluates the same stochastic objective as the step's own evaluation (the same dropout
masks) and leaves the non-trainable weights (moving statistics) as that evaluation left them:
see ``Model._reevaluation``."""

import math

import numpy as np

from .. import _core
from . import schedules


from .base import Optimizer, _hyper  # noqa: F401  (Optimizer is public)


class SGD(Optimizer):
    """Keras SGD: ``v = momentum*v - lr*g; w += v`` (Nesterov: ``w += momentum*v - lr*g``);
    without momentum ``w -= lr*g``. ``weight_decay`` is decoupled as in Keras 3:
    ``w -= lr*weight_decay*w`` before the step."""

    update_kernel = "sgd_update"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 name="SGD"):
        super().__init__(learning_rate, name, weight_decay)
        momentum = float(momentum)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        velocities = [slot(w, "momentum") for w in weights] if self.momentum else None
        kernels.sgd_update(weights, grads, velocities, self.current_learning_rate(), self.momentum,
                           self.nesterov, self._decay())

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras 3 Adam (amsgrad=False only): at step t (1 for the first update)
    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``w -= alpha m / (sqrt(v) + epsilon)`` with ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``
    (Keras's bias correction, folded into the step). ``weight_decay``: ``w -= lr*wd*w`` first."""

    update_kernel = "adam_update"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, name="adam"):
        super().__init__(learning_rate, name, weight_decay)
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True is not supported; use amsgrad=False")
        owner = type(self).__name__  # Adam, or AdamW
        self.beta_1 = _hyper(beta_1, "beta_1", owner, "[0, 1)")
        self.beta_2 = _hyper(beta_2, "beta_2", owner, "[0, 1)")
        self.epsilon = _hyper(epsilon, "epsilon", owner, ">= 0")
        self.amsgrad = False

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        kernels.adam_update(weights, grads, [slot(w, "momentum") for w in weights],
                            [slot(w, "velocity") for w in weights],
                            self.current_learning_rate(), self.beta_1, self.beta_2, self.epsilon,
                            self._decay(), self.iterations + 1)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class Adamax(Optimizer):
    """Keras 3 Adamax: ``m += (g - m)(1 - beta_1)``, ``u = max(beta_2 u, |g|)``,
    ``w -= lr m / ((1 - beta_1^t)(u + epsilon))``. ``weight_decay``: ``w -= lr*wd*w`` first."""

    update_kernel = "adamax_update"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, name="adamax"):
        super().__init__(learning_rate, name, weight_decay)
        self.beta_1 = _hyper(beta_1, "beta_1", "Adamax", "[0, 1)")
        self.beta_2 = _hyper(beta_2, "beta_2", "Adamax", "[0, 1]")
        self.epsilon = _hyper(epsilon, "epsilon", "Adamax", ">= 0")

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        kernels.adamax_update(weights, grads, [slot(w, "momentum") for w in weights],
                              [slot(w, "norm") for w in weights],
                              self.current_learning_rate(), self.beta_1, self.beta_2,
                              self.epsilon, self._decay(), self.iterations + 1)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras 3 Adadelta: ``a = rho a + (1 - rho) g^2``,
    ``delta = -sqrt(d + epsilon) g / sqrt(a + epsilon)``, ``d = rho d + (1 - rho) delta^2``,
    ``w += lr delta``. Keras's default lr 0.001 is small for Adadelta (the paper's form is
    lr = 1.0). ``weight_decay``: ``w -= lr*wd*w`` first."""

    update_kernel = "adadelta_update"

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 name="adadelta"):
        super().__init__(learning_rate, name, weight_decay)
        self.rho = _hyper(rho, "rho", "Adadelta", "[0, 1]")
        self.epsilon = _hyper(epsilon, "epsilon", "Adadelta", ">= 0")

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        kernels.adadelta_update(weights, grads, [slot(w, "accumulated_grad") for w in weights],
                                [slot(w, "accumulated_delta_var") for w in weights],
                                self.current_learning_rate(), self.rho, self.epsilon,
                                self._decay())

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class SGDG2(Optimizer):
    """SGD-G2, the adaptive-step SGD of Ayadi & Turinici (arXiv 2002.09304), as the paper
    gives it. With g the batch gradient at theta and h the current step (``step_size``; starts at
    ``learning_rate``): probe ``g~ = grad f(theta - h g)`` on the same batch; if
    ``<g - g~, g> > 0``, ``h_opt = 2 h <g - g~, g> / |g - g~|^2`` (g - g~ = h H g on a
    quadratic with Hessian H: a curvature estimate along g, no Hessian needed), else
    ``h_opt = h``; then ``h' = beta h + (1 - beta) h_opt`` if
    ``h_opt >= h``, else ``h' = (1 - beta) h_opt``; finally ``theta -= h' g``. One step costs
    two gradient evaluations, so ``apply`` needs a closure (``needs_closure``); fit and
    train_on_batch give it. The inner products run in C++ in one pass (double accumulation).

    beta (default 0.9) is the smoothing coefficient. When the estimate asks for a larger step,
    h moves toward h_opt as an exponential average over about 1/(1 - beta) = 10 steps: one
    noisy mini-batch estimate cannot blow the step up, yet a step chosen 1000x too small
    reaches the estimate within a few dozen steps (0.9^40 ~ 1.5%). h' is then a convex
    combination, so it never passes h_opt (in one dimension h_opt = 2/curvature, the edge of
    stability). When the estimate is below the current step (the probe says the step is too
    long) the step is cut at once, to (1 - beta) h_opt = h_opt/10. A larger beta (0.99) takes
    hundreds of steps to recover from a bad initial step and cuts 100x; a smaller one (0.5)
    follows single-batch noise. 0.9 is also the averaging constant readers know from
    momentum and Adam's beta_1.

    If the probe's gradient is not finite (the probe point blew up), the step is cut to
    (1 - beta) h and the weights move with it. ``weight_decay``: decoupled, applied with the
    new step: ``theta' = theta (1 - h' wd) - h' g``. A schedule as learning_rate is refused:
    the step adapts itself. ``step_size`` is the optimizer's one scalar state."""

    needs_closure = True
    scalar_state = ("step_size",)

    def __init__(self, learning_rate=0.01, beta=0.9, weight_decay=None, name="SGDG2"):
        if callable(learning_rate):
            raise TypeError("SGDG2: learning_rate must be a number (the initial step h0; SGD-G2 "
                            "adapts the step itself, a schedule cannot drive it)")
        super().__init__(learning_rate, name, weight_decay)
        if self.learning_rate <= 0:
            raise ValueError(f"SGDG2: learning_rate (the initial step) must be > 0, got "
                             f"{self.learning_rate} (a zero step never adapts)")
        self.beta = _hyper(beta, "beta", "SGDG2", "[0, 1)")
        self.step_size = self.learning_rate

    def next_step_size(self, h, dot, sq):
        """The step after h, given <g - g~, g> (dot) and |g - g~|^2 (sq): the paper's rule."""
        beta = self.beta
        if not (math.isfinite(dot) and math.isfinite(sq)):
            return (1.0 - beta) * h
        h_opt = 2.0 * h * dot / sq if dot > 0 and sq > 0 else h
        if not math.isfinite(h_opt):  # sq underflowed to a denormal: no information
            h_opt = h
        return beta * h + (1.0 - beta) * h_opt if h_opt >= h else (1.0 - beta) * h_opt

    def _apply(self, grads, weights, closure):
        h = self.step_size
        saved = [self.scratch(w, "gradient") for w in weights]
        _core.sgdg2_probe(weights, grads, saved, h)      # weights: theta - h g; saved: g
        try:
            closure()                                    # grads: g~ at the probe point
        except BaseException:
            _core.sgdg2_step(weights, saved, h, 0.0, 0.0)  # back to theta, then re-raise
            raise
        dot, sq = _core.sgdg2_dots(saved, grads)
        h_new = self.next_step_size(h, dot, sq)
        _core.sgdg2_step(weights, saved, h, h_new, self._decay())
        self.step_size = h_new

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


class RMSprop(Optimizer):
    """Keras 3 RMSprop: ``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g``
    and the denominator is ``v - a^2 + epsilon``, else ``v + epsilon``;
    ``inc = lr g / sqrt(denominator)``; with momentum ``m = momentum m + inc, w -= m``, else
    ``w -= inc`` (plain momentum, not Nesterov). Slots: "velocity", and "momentum" when
    momentum > 0, "average_gradient" when centered. ``weight_decay``: ``w -= lr*wd*w``
    first."""

    update_kernel = "rmsprop_update"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, name="rmsprop"):
        super().__init__(learning_rate, name, weight_decay)
        self.rho = _hyper(rho, "rho", "RMSprop", "[0, 1]")
        self.momentum = _hyper(momentum, "momentum", "RMSprop", "[0, 1]")
        self.epsilon = _hyper(epsilon, "epsilon", "RMSprop", ">= 0")
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"RMSprop: centered must be True or False, got {centered!r}")
        self.centered = bool(centered)

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        kernels.rmsprop_update(
            weights, grads, [slot(w, "velocity") for w in weights],
            [slot(w, "momentum") for w in weights] if self.momentum else None,
            [slot(w, "average_gradient") for w in weights] if self.centered else None,
            self.current_learning_rate(), self.rho, self.momentum, self.epsilon,
            self.centered, self._decay())

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class AdamW(Adam):
    """Keras 3 AdamW: Adam with a decoupled weight decay that must be given (default 0.004):
    ``w -= lr*wd*w`` before Adam's step (Keras's base optimizer applies it first, with the
    step's learning rate). amsgrad=False only."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, name="adamw"):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number >= 0, got None (use Adam "
                             "for no weight decay)")
        if amsgrad:
            raise NotImplementedError("AdamW: amsgrad=True is not supported; use "
                                      "amsgrad=False")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, False, weight_decay, name)


class Nadam(Optimizer):
    """Keras 3 Nadam (Adam with Nesterov momentum, Dozat 2015) at step t (1 for the first
    update), with the momentum cache ``u_s = beta_1 (1 - 0.5 * 0.96^s)`` and its running
    product ``u_product = u_1 ... u_t`` (the optimizer's one scalar state, saved with the
    slots): ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product)``,
    ``v_hat = v / (1 - beta_2^t)``, ``w -= lr m_hat / (sqrt(v_hat) + epsilon)``.
    ``weight_decay``: ``w -= lr*wd*w`` first."""

    update_kernel = "nadam_update"

    scalar_state = ("u_product",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, name="nadam"):
        super().__init__(learning_rate, name, weight_decay)
        self.beta_1 = _hyper(beta_1, "beta_1", "Nadam", "[0, 1)")
        self.beta_2 = _hyper(beta_2, "beta_2", "Nadam", "[0, 1)")
        self.epsilon = _hyper(epsilon, "epsilon", "Nadam", ">= 0")
        self.u_product = 1.0

    def _apply(self, grads, weights, kernels=_core, slot=None):
        slot = slot or self.slot
        step = self.iterations + 1
        u_product = self.u_product * (self.beta_1 * (1.0 - 0.5 * 0.96 ** step))
        kernels.nadam_update(weights, grads, [slot(w, "momentum") for w in weights],
                             [slot(w, "velocity") for w in weights],
                             self.current_learning_rate(), self.beta_1, self.beta_2,
                             self.epsilon, self._decay(), step, u_product)
        self.u_product = u_product  # only once the step has been taken

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamax": Adamax, "adadelta": Adadelta, "sgdg2": SGDG2,
            "rmsprop": RMSprop, "adamw": AdamW, "nadam": Nadam}


def get(spec):
    """An optimizer from a name (Keras defaults) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        return _BY_NAME[spec.lower()]()
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {spec!r}; expected a dlfast.optimizers.Optimizer "
                         f"or one of {sorted(_BY_NAME)}") from None


__all__ = ["Optimizer", "SGD", "Adam", "Adamax", "Adadelta", "SGDG2", "get", "schedules",
           "RMSprop", "AdamW", "Nadam"]
