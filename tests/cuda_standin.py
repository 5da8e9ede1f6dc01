"""A NumPy stand-in for the extension module dlfast._cuda, with the same functions and
signatures (csrc/bindings/cuda), computing through the CPU kernels. Installed in place of the
real module it lets the Python side of the GPU path (dlfast.cuda.ops, model.to('cuda'):
argument order, shapes, buffer reuse, the fit/evaluate/predict plumbing) run and be checked
on a machine without a GPU. It says nothing about the CUDA kernels themselves: those are
tested against the CPU ops in test_cuda.py where a GPU is present."""

import numpy as np

from dlfast import _core
from dlfast.ops import conv_output_length


class Array:
    def __init__(self, a):
        self.a = a  # a C-contiguous NumPy array; views share memory as device views do

    shape = property(lambda self: self.a.shape)
    dtype = property(lambda self: self.a.dtype)
    ndim = property(lambda self: self.a.ndim)
    size = property(lambda self: self.a.size)
    nbytes = property(lambda self: self.a.nbytes)
    device = "cuda:0"
    data_ptr = property(lambda self: self.a.__array_interface__["data"][0])

    def to_numpy(self):
        return self.a.copy()

    def upload(self, arr):
        assert arr.shape == self.a.shape and arr.dtype == self.a.dtype
        self.a[...] = arr

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        assert all(d >= 0 for d in shape), shape  # the binding takes no -1
        view = self.a.reshape(shape)
        assert np.shares_memory(view, self.a) or view.size == 0
        return Array(view)

    def rows(self, lo, hi):
        return Array(self.a[lo:hi])

    def fill_zero(self):
        self.a[...] = 0


def status():
    return 1, ""


def synchronize():
    pass


_allow_tf32 = [False]


def set_allow_tf32(allow):
    _allow_tf32[0] = bool(allow)


def allow_tf32():
    return _allow_tf32[0]


def tf32_active():
    return False  # the stand-in computes in float32 on the CPU


def empty(shape, dtype="float32"):
    return Array(np.full(shape, np.nan if dtype != "int64" else -1, dtype))


def zeros(shape, dtype="float32"):
    return Array(np.zeros(shape, dtype))


def from_numpy(a):
    return Array(np.array(a, order="C"))


def _f(x):
    if x is None:
        return None
    assert isinstance(x, Array) and x.a.dtype == np.float32, x
    return x.a


def gemm(C, A, B, bias, trans_a, trans_b, accumulate, act):
    out = _core.gemm(_f(A), _f(B), trans_a, trans_b)
    if bias is not None:
        out = out + _f(bias)
    out = out + C.a if accumulate else out
    C.a[...] = _core.activation_forward(np.ascontiguousarray(out, np.float32), act) if act else out


def activation_forward(y, x, act):
    y.a[...] = _core.activation_forward(_f(x), act) if act else _f(x)


def activation_backward(dx, dy, y, act):
    dx.a[...] = _core.activation_backward(_f(dy), _f(y), act) if act else _f(dy)


def dense_forward(y, x, W, b, act):
    y.a[...] = _core.dense_forward(_f(x), _f(W), _f(b), act)


def dense_backward(dx, dW, db, dy, x, W, y, act, accumulate):
    r = _core.dense_backward(_f(dy), _f(x), _f(W), _f(y), act, _f(dW), _f(db), dx is not None,
                             accumulate)
    if dx is not None:
        dx.a[...] = r


def loss(value, grad, y_pred, target, labels, kind, from_logits, scale, accumulate):
    t = labels.a if labels is not None else _f(target)
    v, g = _core.loss(kind, t, _f(y_pred), from_logits, grad is not None)
    value.a[0] = (value.a[0] if accumulate else 0.0) + scale * v
    if grad is not None:
        grad.a[...] = g


def count_correct(count, y_pred, target, labels, threshold):
    y = _f(y_pred)
    if y.shape[1] == 1:
        ok = (y[:, 0] > threshold) == (_f(target)[:, 0] > 0.5)
    else:
        ok = y.argmax(1) == (labels.a if labels is not None else _f(target).argmax(1))
    count.a[0] += int(np.count_nonzero(ok))


def sgd_update(w, v, g, lr, momentum, nesterov, wd):
    _core.sgd_update([_f(w)], [_f(g)], None if v is None else [_f(v)], lr, momentum, nesterov,
                     wd)


def adam_update(w, m, v, g, lr, b1, b2, eps, t, weight_decay=0.0):
    _core.adam_update([_f(w)], [_f(g)], [_f(m)], [_f(v)], lr, b1, b2, eps, weight_decay, t)


def _padding(in_hw, kernel_hw, out_hw, geometry):
    sh, sw, dh, dw, pt, pl = geometry
    valid = tuple(conv_output_length(n, k, s, d, "valid")
                  for n, k, s, d in zip(in_hw, kernel_hw, (sh, sw), (dh, dw)))
    mode = "valid" if valid == tuple(out_hw) and pt == pl == 0 else "same"
    return (sh, sw), mode, (dh, dw)


def conv2d_forward(y, x, w, b, out_hw, geometry, act):
    strides, mode, dil = _padding(x.shape[1:3], w.shape[:2], out_hw, geometry)
    y.a[...] = _core.conv2d_forward(_f(x), _f(w), _f(b), strides, mode, dil, act)


def conv2d_backward(dx, dw, db, dy, x, w, y, geometry, act, accumulate):
    strides, mode, dil = _padding(x.shape[1:3], w.shape[:2], dy.shape[1:3], geometry)
    r = _core.conv2d_backward(_f(dy), _f(x), _f(w), _f(y), strides, mode, dil, act, _f(dw),
                              _f(db), dx is not None, accumulate)
    if dx is not None:
        dx.a[...] = r


def pool2d_forward(y, x, pool, geometry, is_max):
    strides, mode, _ = _padding(x.shape[1:3], pool, y.shape[1:3], geometry)
    fn = _core.maxpool2d_forward if is_max else _core.avgpool2d_forward
    y.a[...] = fn(_f(x), tuple(pool), strides, mode)


def pool2d_backward(dx, dy, x, pool, geometry, is_max):
    strides, mode, _ = _padding(dx.shape[1:3], pool, dy.shape[1:3], geometry)
    if is_max:
        dx.a[...] = _core.maxpool2d_backward(_f(dy), _f(x), tuple(pool), strides, mode)
    else:
        dx.a[...] = _core.avgpool2d_backward(_f(dy), dx.shape, tuple(pool), strides, mode)


def lstm_forward(H, C, Z, x, W, R, b, h0, c0):
    h, c, z = _core.lstm_forward(_f(x), _f(W), _f(R), _f(b), _f(h0), _f(c0))
    H.a[...], C.a[...], Z.a[...] = h, c, z


def lstm_backward(dx, dW, dR, db, dh0, dc0, dH, dhL, dcL, x, W, R, h0, c0, H, C, Z, accumulate):
    rx, rh0, rc0 = _core.lstm_backward(_f(dH), _f(dhL), _f(dcL), _f(x), _f(W), _f(R), _f(h0),
                                       _f(c0), _f(H), _f(C), _f(Z), _f(dW), _f(dR), _f(db),
                                       dx is not None, dh0 is not None, accumulate)
    for out, r in ((dx, rx), (dh0, rh0), (dc0, rc0)):
        if out is not None:
            out.a[...] = r


def add(out, a, b):
    assert out.shape == a.shape == b.shape, (out.shape, a.shape, b.shape)
    np.add(a.a, b.a, out=out.a)


def copy_strided(dst, src, offset, ld):
    flat = src.a.reshape(-1)
    for r in range(dst.shape[0]):
        dst.a[r] = flat[offset + r * ld: offset + r * ld + dst.shape[1]]
