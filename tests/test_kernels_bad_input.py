"""Bad input to the kernels (dlfast.ops and dlfast._core): a ValueError or TypeError naming
the argument, what was expected and what came; never a crash or a wrong answer."""

import numpy as np
import pytest

from dlfast import _core, ops

F32 = np.float32


def f32(*shape):
    return np.ones(shape, F32)


# --- matmul / gemm ---------------------------------------------------------------------

@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_mismatched_shapes(trans):
    a = f32(3, 4)
    b = f32(5, 2) if not trans[1] else f32(2, 5)
    with pytest.raises(ValueError, match=r"inner dimensions differ.*expected op\(b\)\.shape\[0\]"):
        ops.matmul(a if not trans[0] else a.T.copy(), b, *trans)


@pytest.mark.parametrize("bad", [np.ones((3, 4), np.int64), np.ones((3, 4), np.int32),
                                 np.ones((3, 4), bool), np.ones((3, 4), np.float16),
                                 np.array([[1, None, 2, 3]] * 3, dtype=object),
                                 np.array([["a"] * 4] * 3)],
                         ids=["int64", "int32", "bool", "float16", "object", "str"])
def test_matmul_wrong_dtype(bad):
    with pytest.raises(TypeError, match=r"argument 'a' must be a float32 or float64 array, "
                                        r"got dtype"):
        ops.matmul(bad, f32(4, 2))
    with pytest.raises(TypeError, match=r"argument 'b' must be a float32 or float64 array, "
                                        r"got dtype"):
        ops.matmul(f32(2, 3), bad)


def test_matmul_mixed_float_dtypes():
    with pytest.raises(TypeError, match=r"argument 'b' must be a float32 numpy array.*got float64"):
        ops.matmul(f32(3, 4), np.ones((4, 2)))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4), ()], ids=["1d", "3d", "0d"])
def test_matmul_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"argument 'a' must be 2-D, got shape"):
        ops.matmul(np.ones(shape, F32), f32(4, 2))
    with pytest.raises(ValueError, match=r"argument 'b' must be 2-D, got shape"):
        ops.matmul(f32(2, 4), np.ones(shape, F32))


def test_gemm_out_wrong_shape_dtype_readonly_strided_aliased():
    a, b = f32(3, 4), f32(4, 2)
    with pytest.raises(ValueError, match=r"argument 'out' must have shape \(3, 2\), got \(3, 3\)"):
        _core.gemm(a, b, out=f32(3, 3))
    with pytest.raises(ValueError, match=r"argument 'out' must have shape \(3, 2\), got \(2, 3\)"):
        _core.gemm(a, b, out=f32(2, 3))
    ro = np.zeros((3, 2), F32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 'out' .*must be writable, got a read-only"):
        _core.gemm(a, b, out=ro)
    assert np.all(ro == 0)
    with pytest.raises(TypeError, match=r"argument 'out' must be a float32 numpy array.*float64"):
        _core.gemm(a, b, out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"argument 'out' must be C-contiguous"):
        _core.gemm(a, b, out=np.zeros((3, 4), F32)[:, ::2])
    sq = f32(3, 3)
    with pytest.raises(ValueError, match=r"'out' must not share memory with 'a' or 'b'"):
        _core.gemm(sq, f32(3, 3), out=sq)
    with pytest.raises(ValueError, match=r"'out' must not share memory"):
        _core.gemm(f32(3, 3), sq, out=sq)
    with pytest.raises(ValueError, match=r"accumulate=True needs an 'out' array"):
        _core.gemm(a, b, accumulate=True)
    with pytest.raises(ValueError, match=r"bias.*expected 2, got 3"):
        _core.gemm(a, b, bias=f32(3))
    with pytest.raises(ValueError, match=r"argument 'bias' must be 1-D"):
        _core.gemm(a, b, bias=f32(1, 2))


def test_gemm_rejects_non_arrays_ints_and_strided_views():
    with pytest.raises(TypeError, match=r"argument 'a' must be a float32 or float64 numpy array, "
                                        r"got list"):
        _core.gemm([[1.0]], [[1.0]])
    with pytest.raises(TypeError, match=r"argument 'a' .*got int64 array of shape \(2, 2\)"):
        _core.gemm(np.ones((2, 2), np.int64), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"argument 'a' must be C-contiguous, got a strided view"):
        _core.gemm(np.ones((3, 8), F32)[:, ::2], f32(4, 2))
    with pytest.raises(ValueError, match=r"argument 'b' must be C-contiguous"):
        _core.gemm(f32(3, 4), f32(2, 4).T)


# --- dense ------------------------------------------------------------------------------

def test_dense_mismatched_shapes():
    with pytest.raises(ValueError, match=r"'x' has 4 features .* 'kernel' expects 5"):
        ops.dense_forward(f32(3, 4), f32(5, 2))
    with pytest.raises(ValueError, match=r"bias.*expected 2, got 3"):
        ops.dense_forward(f32(3, 4), f32(4, 2), f32(3))
    with pytest.raises(ValueError, match=r"argument 'x' must be 2-D, got shape \(4,\)"):
        ops.dense_forward(f32(4), f32(4, 2))
    with pytest.raises(ValueError, match=r"dy\.shape\[1\].*expected 2, got 3"):
        ops.dense_backward(f32(3, 3), f32(3, 4), f32(4, 2))
    with pytest.raises(ValueError, match=r"dy\.shape\[0\].*expected 3, got 5"):
        ops.dense_backward(f32(5, 2), f32(3, 4), f32(4, 2))
    with pytest.raises(ValueError, match=r"'y' must have the shape of 'dy' \(3, 2\), got \(3, 3\)"):
        ops.dense_backward(f32(3, 2), f32(3, 4), f32(4, 2), None, "tanh", y=f32(3, 3))


def test_dense_wrong_dtype_and_activation():
    with pytest.raises(TypeError, match=r"argument 'x' must be a float32 or float64 array, got "
                                        r"dtype int64"):
        ops.dense_forward(np.ones((3, 4), np.int64), f32(4, 2))
    with pytest.raises(TypeError, match=r"argument 'kernel' must hold numbers.*<U1"):
        ops.dense_forward(f32(3, 4), np.full((4, 2), "a"))
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; expected one of"):
        ops.dense_forward(f32(3, 4), f32(4, 2), None, "gelu")
    with pytest.raises(ValueError, match=r"activation code must be 0\.\.5 \(linear, .*\), got 7"):
        _core.dense_forward(f32(3, 4), f32(4, 2), None, 7)


def test_core_dense_backward_output_buffers_checked():
    x, w, dy = f32(3, 4), f32(4, 2), f32(3, 2)
    y = _core.dense_forward(x, w, None, 0)
    with pytest.raises(ValueError, match=r"'dkernel' must have the kernel's shape \(4, 2\), got "
                                         r"\(2, 4\)"):
        _core.dense_backward(dy, x, w, y, 0, f32(2, 4), None)
    ro = np.zeros((4, 2), F32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 'dkernel' .*writable"):
        _core.dense_backward(dy, x, w, y, 0, ro, None)
    with pytest.raises(ValueError, match=r"dbias.*expected 2, got 5"):
        _core.dense_backward(dy, x, w, y, 0, np.zeros((4, 2), F32), np.zeros(5, F32))


# --- activations --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_bad_input(name):
    fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    for bad in (np.ones(3, np.int64), np.ones(3, bool), np.array([1, None], object),
                np.array(["x", "y"])):
        with pytest.raises(TypeError, match=r"argument 'x' must be a float32 or float64 array, "
                                            r"got dtype"):
            fwd(bad)
    with pytest.raises(ValueError, match=r"'y' must have the shape of 'dy' \(3, 4\), got \(4, 3\)"):
        bwd(f32(3, 4), f32(4, 3))
    with pytest.raises(TypeError, match=r"argument 'dy' must be a float32 or float64"):
        bwd(np.ones((3, 4), np.int64), f32(3, 4))


# --- losses -----------------------------------------------------------------------------

def test_sparse_labels_out_of_range():
    p = np.full((3, 4), 0.25, F32)
    with pytest.raises(ValueError, match=r"'y_true' holds class 4 at index 2, expected "
                                         r"0 <= class < 4"):
        ops.sparse_categorical_crossentropy_forward(np.array([0, 1, 4]), p)
    with pytest.raises(ValueError, match=r"'y_true' holds class -1 at index 0"):
        ops.sparse_categorical_crossentropy_backward(np.array([-1, 1, 2]), p, from_logits=True)


def test_sparse_labels_wrong_count_and_type():
    p = np.full((3, 4), 0.25, F32)
    with pytest.raises(ValueError, match=r"expected 3 class labels \(shape \(3,\)\), got shape "
                                         r"\(2,\)"):
        ops.sparse_categorical_crossentropy_forward(np.array([0, 1]), p)
    with pytest.raises(ValueError, match=r"expected 3 class labels.*got shape \(3, 2\)"):
        ops.sparse_categorical_crossentropy_forward(np.zeros((3, 2), int), p)
    with pytest.raises(TypeError, match=r"sparse labels must be integers, got dtype <U1"):
        ops.sparse_categorical_crossentropy_forward(np.array(["a", "b", "c"]), p)
    with pytest.raises(ValueError, match=r"sparse labels must be whole numbers"):
        ops.sparse_categorical_crossentropy_forward(np.array([0.5, 1, 2]), p)
    with pytest.raises(ValueError, match=r"'y_pred' must be \(batch, classes\), got shape"):
        ops.sparse_categorical_crossentropy_forward(np.array([0, 1]), f32(2, 3, 4))


@pytest.mark.parametrize("name", ["mse", "binary_crossentropy", "categorical_crossentropy"])
def test_dense_target_losses_bad_input(name):
    fwd = getattr(ops, f"{name}_forward")
    with pytest.raises(ValueError, match=r"'y_true' must have the shape of 'y_pred' \(2, 3\), "
                                         r"got \(2, 4\)"):
        fwd(np.ones((2, 4)), f32(2, 3))
    with pytest.raises(TypeError, match=r"argument 'y_pred' must be a float32 or float64 array, "
                                        r"got dtype int64"):
        fwd(np.ones((2, 3)), np.ones((2, 3), np.int64))
    with pytest.raises(TypeError, match=r"argument 'y_true' must hold numbers.*object"):
        fwd(np.array([[1, None, 2]] * 2, object), f32(2, 3))
    with pytest.raises(ValueError, match=r"'y_pred' must have a batch axis, got a scalar"):
        fwd(np.float32(1), np.float32(1))


def test_loss_kind_code_checked():
    with pytest.raises(ValueError, match=r"kind must be 0\.\.6 \(mse, .*, kl_divergence\), got 9"):
        _core.loss(9, f32(2, 3), f32(2, 3))


# --- sgd_update ---------------------------------------------------------------------------

def test_sgd_update_bad_input():
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(4,\), expected the weight's "
                                         r"\(3,\)"):
        ops.sgd_update([np.ones(3)], [np.ones(4)], None, 0.1)
    with pytest.raises(ValueError, match=r"got 1 weights but 0 grads"):
        ops.sgd_update([np.ones(3)], [], None, 0.1)
    with pytest.raises(ValueError, match=r"momentum != 0 needs a list of velocities"):
        ops.sgd_update([np.ones(3)], [np.ones(3)], None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"got 1 weights but 2 velocities"):
        ops.sgd_update([np.ones(3)], [np.ones(3)], [np.ones(3)] * 2, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"velocities\[0\] has shape \(2,\), expected the "
                                         r"weight's \(3,\)"):
        ops.sgd_update([np.ones(3)], [np.ones(3)], [np.ones(2)], 0.1, momentum=0.9)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument 'weights\[0\]' .*must be writable"):
        ops.sgd_update([ro], [np.ones(3)], None, 0.1)
    with pytest.raises(ValueError, match=r"argument 'weights\[0\]' must be C-contiguous"):
        ops.sgd_update([np.ones(6)[::2]], [np.ones(3)], None, 0.1)
    with pytest.raises(TypeError, match=r"argument 'weights\[0\]' must be a float32 or float64 "
                                        r"numpy array, got int64 array"):
        ops.sgd_update([np.ones(3, np.int64)], [np.ones(3, np.int64)], None, 0.1)
    with pytest.raises(TypeError, match=r"argument 'grads\[0\]' must be a float64 numpy array.*"
                                        r"got float32"):
        ops.sgd_update([np.ones(3)], [np.ones(3, F32)], None, 0.1)


def test_sgd_update_bad_input_changes_nothing():
    # the error is found in the second pair: the first weight must not have been updated
    w0, w1 = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(4,\)"):
        ops.sgd_update([w0, w1], [np.ones(3), np.ones(4)], None, 0.1)
    np.testing.assert_array_equal(w0, 1.0)
    np.testing.assert_array_equal(w1, 1.0)


def test_optimizer_apply_lists_must_be_parallel():
    import dlfast
    with pytest.raises(ValueError, match=r"got 1 grads for 0 weights"):
        dlfast.optimizers.SGD().apply([np.ones(3)], [])
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\], got 1.5"):
        dlfast.optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number >= 0, got -1"):
        dlfast.optimizers.SGD(learning_rate=-1)


def test_threads_and_isa_controls():
    import dlfast
    with pytest.raises(ValueError, match=r"expected n >= 1, got 0"):
        dlfast.set_num_threads(0)
    with pytest.raises(TypeError, match=r"expected an int >= 1, got '2'"):
        dlfast.set_num_threads("2")
    before = _core.cpu_capability()
    assert _core.set_cpu_capability("sse9") is False
    assert _core.cpu_capability() == before
