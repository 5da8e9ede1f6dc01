"""dlfast.ops for sequence models (issue 15): layer normalization over the last axis,
embedding lookup, the GRU (Keras 3, reset_after=True), the SimpleRNN (tanh). Re-exported by ``dlfast.ops`` (import
them from there); the LSTM's pair is in ``dlfast.ops`` itself."""

import numpy as np

from . import _core
from ._ops_common import _same_dtype, as_float_array

__all__ = ["layernorm_forward", "layernorm_backward", "embedding_forward", "embedding_backward",
           "gru_forward", "gru_backward", "simple_rnn_forward", "simple_rnn_backward"]


def layernorm_forward(x, gamma=None, beta=None, epsilon=1e-3):
    """``keras.layers.LayerNormalization(axis=-1)``'s math: each row of x (every index but the
    last) normalised over the last axis, then ``* gamma + beta`` (C,). Returns y."""
    fn = "layernorm_forward"
    x = as_float_array(x, fn, "x")
    gamma, beta = _same_dtype(fn, x, gamma=gamma, beta=beta)
    return _core.layernorm_forward(x, gamma, beta, float(epsilon))[0]


def layernorm_backward(dy, x, gamma=None, beta=None, epsilon=1e-3):
    """Gradients of ``layernorm_forward``: returns ``(dx, dgamma, dbeta)`` (None for an absent
    gamma or beta). The row statistics are recomputed (a layer keeps them instead)."""
    fn = "layernorm_backward"
    x = as_float_array(x, fn, "x")
    dy, gamma, beta = _same_dtype(fn, x, dy=dy, gamma=gamma, beta=beta)
    _, mean, inv_std = _core.layernorm_forward(x, gamma, beta, float(epsilon))
    dgamma = None if gamma is None else np.zeros_like(gamma)
    dbeta = None if beta is None else np.zeros_like(beta)
    dx = _core.layernorm_backward(dy, x, gamma, mean, inv_std, dgamma, dbeta, True, False)
    return dx, dgamma, dbeta


def embedding_forward(ids, embeddings):
    """``keras.layers.Embedding``'s lookup: rows of embeddings (input_dim, output_dim) by the
    integer ids (any shape) -> ids.shape + (output_dim,). Ids outside [0, input_dim) raise
    ValueError."""
    fn = "embedding_forward"
    embeddings = as_float_array(embeddings, fn, "embeddings")
    return _core.embedding_forward(np.asarray(ids), embeddings)


def embedding_backward(dy, ids, input_dim):
    """The gradient of ``embedding_forward`` w.r.t. the table: dy's rows added by id into an
    (input_dim, output_dim) array (a scatter-add, no one-hot). Deterministic."""
    fn = "embedding_backward"
    dy = as_float_array(dy, fn, "dy")
    dembeddings = np.zeros((int(input_dim), dy.shape[-1] if dy.ndim else 0), dy.dtype)
    _core.embedding_backward(dy, np.asarray(ids), dembeddings, False)
    return dembeddings


def gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None):
    """Every step of a GRU (Keras 3, reset_after=True, gates z, r, h~): x (N, L, D), kernel
    (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U) (input bias, recurrent bias), h0 (N, U) or
    None (zeros). Returns h of every step (N, L, U); the last state is ``h[:, -1]``."""
    fn = "gru_forward"
    x = as_float_array(x, fn, "x")
    kernel, recurrent_kernel, bias, h0 = _same_dtype(
        fn, x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)
    return _core.gru_forward(x, kernel, recurrent_kernel, bias, h0)[0]


def gru_backward(dh, x, kernel, recurrent_kernel, bias=None, h0=None, dh_last=None):
    """Gradients of ``gru_forward`` given ``dh`` (N, L, U), the gradient of every step's h (None:
    zeros), plus an optional gradient of the last h (N, U). Returns ``(dx, dkernel,
    drecurrent_kernel, dbias, dh0)`` (dbias None without a bias). The forward is recomputed."""
    fn = "gru_backward"
    x = as_float_array(x, fn, "x")
    dh, kernel, recurrent_kernel, bias, h0, dh_last = _same_dtype(
        fn, x, dh=dh, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0,
        dh_last=dh_last)
    H, Z = _core.gru_forward(x, kernel, recurrent_kernel, bias, h0)
    dkernel, drecurrent = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx, dh0 = _core.gru_backward(dh, dh_last, x, kernel, recurrent_kernel, h0, H, Z, dkernel,
                                 drecurrent, dbias, True, True, False)
    return dx, dkernel, drecurrent, dbias, dh0


def simple_rnn_forward(x, kernel, recurrent_kernel, bias=None, h0=None):
    """Every step of Keras's SimpleRNN (activation tanh): x (N, L, D), kernel (D, U),
    recurrent_kernel (U, U), bias (U,), h0 (N, U) or None (zeros) -> h of every step (N, L, U)."""
    fn = "simple_rnn_forward"
    x = as_float_array(x, fn, "x")
    kernel, recurrent_kernel, bias, h0 = _same_dtype(
        fn, x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)
    return _core.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)


def simple_rnn_backward(dh, x, kernel, recurrent_kernel, bias=None, h0=None, dh_last=None):
    """Gradients of ``simple_rnn_forward`` given ``dh`` (N, L, U) or None and an optional
    gradient of the last h (N, U): returns ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``
    (dbias None without a bias). The forward is recomputed."""
    fn = "simple_rnn_backward"
    x = as_float_array(x, fn, "x")
    dh, kernel, recurrent_kernel, bias, h0, dh_last = _same_dtype(
        fn, x, dh=dh, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0,
        dh_last=dh_last)
    H = _core.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)
    dkernel, drecurrent = np.zeros_like(kernel), np.zeros_like(recurrent_kernel)
    dbias = None if bias is None else np.zeros_like(bias)
    dx, dh0 = _core.simple_rnn_backward(dh, dh_last, x, kernel, recurrent_kernel, h0, H, dkernel,
                                        drecurrent, dbias, True, True, False)
    return dx, dkernel, drecurrent, dbias, dh0
