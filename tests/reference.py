"""Independent float64 NumPy references for the tests (plain formulas, no dlfast code)."""

import numpy as np

EPS = 1e-7  # Keras's epsilon


def act_forward(z, name):
    z = np.asarray(z, np.float64)
    if name in (None, "linear"):
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "leaky_relu":  # keras.activations.leaky_relu's default slope
        return leaky_relu(z, 0.2)
    raise ValueError(name)


def leaky_relu(z, slope):
    """x > 0 ? x : slope * x in float64 (NaN stays NaN)."""
    z = np.asarray(z, np.float64)
    return np.where(z > 0, z, slope * z)


def leaky_relu_grad(dy, y, slope):
    """d/dz of sum(dy * leaky_relu(z)) from the output y (slope >= 0: y > 0 where z > 0)."""
    return np.asarray(dy, np.float64) * np.where(np.asarray(y) > 0, 1.0, slope)


def act_backward(dy, y, name):
    """d/dz of sum(dy * act(z)), from the forward output y."""
    dy = np.asarray(dy, np.float64)
    y = np.asarray(y, np.float64)
    if name in (None, "linear"):
        return dy.copy()
    if name == "relu":  # a select, as PyTorch's threshold_backward: 0 where y <= 0 even for
        return np.where(y <= 0, 0.0, dy)  # an infinite dy; a NaN y passes dy through
    if name == "sigmoid":
        return dy * y * (1.0 - y)
    if name == "tanh":
        return dy * (1.0 - y * y)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    if name == "leaky_relu":
        return leaky_relu_grad(dy, y, 0.2)
    raise ValueError(name)


def dense_forward(x, w, b, act):
    z = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    if b is not None:
        z = z + np.asarray(b, np.float64)
    return act_forward(z, act)


def dense_backward(dy, x, w, b, act):
    y = dense_forward(x, w, b, act)
    dz = act_backward(dy, y, act)
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    return dz @ w64.T, x64.T @ dz, (None if b is None else dz.sum(axis=0))


def onehot(labels, classes):
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def log_softmax(z):
    z = np.asarray(z, np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


# Losses: value (Keras's sum_over_batch_size: mean over the batch; mse and binary
# cross-entropy are first averaged over the last axis) and gradient w.r.t. y_pred.

def mse(t, p):
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    return np.mean((p - t) ** 2), 2.0 * (p - t) / p.size


def clip_bounds(dtype):
    """[1e-7, 1 - 1e-7] as the dtype holds them (in float32, 1 - 1e-7 rounds to 1 - 2**-23)."""
    one, eps = np.dtype(dtype).type(1), np.dtype(dtype).type(EPS)
    return float(eps), float(one - eps)


def bce(t, p):
    lo, hi = clip_bounds(np.asarray(p).dtype)
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    pc = np.clip(p, lo, hi)
    value = -np.mean(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    grad = np.where(pc == p, (pc - t) / (pc * (1 - pc)), 0.0) / p.size
    return value, grad


def bce_logits(t, z):
    t, z = np.asarray(t, np.float64), np.asarray(z, np.float64)
    value = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    return value, (act_forward(z, "sigmoid") - t) / z.size


def cce(t, p):
    """Keras's categorical cross-entropy from probabilities: each row is first divided by its
    sum, then clipped. The gradient is the derivative of that value (so it has the row term
    sum(t over unclipped) / s, which a following softmax's backward removes)."""
    lo, hi = clip_bounds(np.asarray(p).dtype)
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    qc = np.clip(q, lo, hi)
    n = p.shape[0]
    value = -np.sum(t * np.log(qc)) / n
    unclipped = qc == q
    own = np.divide(-t, p, out=np.zeros_like(p), where=unclipped)
    grad = (own
            + np.sum(np.where(unclipped, t, 0.0), axis=-1, keepdims=True) / s) / n
    return value, grad


def cce_logits(t, z):
    t, z = np.asarray(t, np.float64), np.asarray(z, np.float64)
    n = z.shape[0]
    value = -np.sum(t * log_softmax(z)) / n
    sm = np.exp(log_softmax(z))
    return value, (sm * t.sum(axis=-1, keepdims=True) - t) / n


def sgd_step(w, g, v, lr, momentum, nesterov, wd):
    """Keras 3 SGD on float64 copies; returns (w, v)."""
    w = np.array(w, np.float64)
    g = np.asarray(g, np.float64)
    if wd:
        w = w - lr * wd * w
    if momentum:
        v = momentum * np.asarray(v, np.float64) - lr * g
        if nesterov:
            w = w + momentum * v - lr * g
        else:
            w = w + v
    else:
        w = w - lr * g
    return w, v


# Keras 3's update_step of each optimizer, plainly, on float64 copies; t is the 1-based step.
# The decoupled weight decay w -= lr*wd*w comes first, as in Keras's base optimizer.

def adam_step(w, g, m, v, t, lr, beta_1, beta_2, epsilon, wd=0.0):
    """Returns (w, m, v)."""
    w, g = np.array(w, np.float64), np.asarray(g, np.float64)
    w = w - lr * wd * w
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - m * alpha / (np.sqrt(v) + epsilon), m, v


def adamax_step(w, g, m, u, t, lr, beta_1, beta_2, epsilon, wd=0.0):
    """Returns (w, m, u)."""
    w, g = np.array(w, np.float64), np.asarray(g, np.float64)
    w = w - lr * wd * w
    m = m + (g - m) * (1 - beta_1)
    u = np.maximum(beta_2 * u, np.abs(g))
    return w - lr * m / ((1 - beta_1 ** t) * (u + epsilon)), m, u


def adadelta_step(w, g, a, d, lr, rho, epsilon, wd=0.0):
    """Returns (w, accumulated_grad, accumulated_delta_var)."""
    w, g = np.array(w, np.float64), np.asarray(g, np.float64)
    w = w - lr * wd * w
    a = rho * a + (1 - rho) * g * g
    delta = -np.sqrt(d + epsilon) * g / np.sqrt(a + epsilon)
    d = rho * d + (1 - rho) * delta * delta
    return w + lr * delta, a, d


def sgdg2_next_step(h, g, g_probe, beta):
    """SGD-G2's step-size rule (Ayadi & Turinici, arXiv 2002.09304) from the gradient g and
    the probe's gradient g~ (flat float64 arrays): the next step h'."""
    diff = g - g_probe
    dot, sq = float(diff @ g), float(diff @ diff)
    h_opt = 2 * h * dot / sq if dot > 0 else h
    return beta * h + (1 - beta) * h_opt if h_opt >= h else (1 - beta) * h_opt


def central_diff_at(f, a, index, eps=1e-6):
    """(f(a_i + eps) - f(a_i - eps)) / 2eps for the flat entries `index` of array a (each
    changed in place, then restored)."""
    flat = a.reshape(-1)  # a view: a must be contiguous
    assert np.shares_memory(flat, a)
    out = np.empty(len(index))
    for k, i in enumerate(index):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def central_diff(f, params, eps=1e-6):
    """d f / d p for every element of every array in params (changed in place, restored)."""
    return [central_diff_at(f, p, range(p.size), eps).reshape(p.shape) for p in params]


# RMSprop and Nadam: Keras 3's update_step, plainly (keras/src/optimizers/rmsprop.py, nadam.py),
# decoupled weight decay first as above.

def rmsprop_step(w, g, v, m, a, lr, rho, momentum, epsilon, centered, wd=0.0):
    """Returns (w, velocity, momentum, average_gradient); m and a are passed through unchanged
    when unused (momentum == 0, not centered)."""
    w, g = np.array(w, np.float64), np.asarray(g, np.float64)
    w = w - lr * wd * w
    v = rho * v + (1 - rho) * g * g
    if centered:
        a = rho * a + (1 - rho) * g
        denominator = v - a * a + epsilon
    else:
        denominator = v + epsilon
    increment = lr * g / np.sqrt(denominator)
    if momentum > 0:
        m = momentum * m + increment
        return w - m, v, m, a
    return w - increment, v, m, a


def nadam_u_product(beta_1, t):
    """Keras's Nadam _u_product after step t: u_1 * ... * u_t, u_s = beta_1 (1 - 0.5 0.96^s)."""
    product = 1.0
    for s in range(1, t + 1):
        product *= beta_1 * (1 - 0.5 * 0.96 ** s)
    return product


def nadam_step(w, g, m, v, t, lr, beta_1, beta_2, epsilon, wd=0.0):
    """Returns (w, m, v) after Keras 3 Nadam's step t (1-based)."""
    w, g = np.array(w, np.float64), np.asarray(g, np.float64)
    w = w - lr * wd * w
    u_t = beta_1 * (1 - 0.5 * 0.96 ** t)
    u_t_1 = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
    u_product_t = nadam_u_product(beta_1, t)
    u_product_t_1 = u_product_t * u_t_1
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product_t)
    v_hat = v / (1 - beta_2 ** t)
    return w - m_hat * lr / (np.sqrt(v_hat) + epsilon), m, v


# Regression and divergence losses (keras/src/losses/losses.py): value with Keras's reduction
# and gradient w.r.t. y_pred. mae and huber: mean over the last axis, then over the rest;
# kl_divergence: sum over the last axis, mean over the rest.

def mae(t, p):
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    return np.mean(np.abs(t - p)), np.sign(p - t) / p.size


def huber(t, p, delta=1.0):
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    e = p - t
    quadratic = np.abs(e) <= delta
    value = np.mean(np.where(quadratic, 0.5 * e * e, delta * np.abs(e) - 0.5 * delta ** 2))
    return value, np.where(quadratic, e, delta * np.sign(e)) / p.size


def kl_divergence(t, p):
    """Clipped to [1e-7, 1] in the inputs' dtype (Keras clips in y_pred's dtype)."""
    dtype = np.asarray(p).dtype
    eps = float(np.dtype(dtype).type(EPS)) if dtype.kind == "f" else EPS
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    tc, pc = np.clip(t, eps, 1), np.clip(p, eps, 1)
    rows = p.size // p.shape[-1]
    value = np.sum(tc * np.log(tc / pc)) / rows
    return value, np.where(pc == p, -tc / pc, 0.0) / rows
