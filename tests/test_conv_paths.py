"""Every path of conv2d_forward / conv2d_backward (csrc/cpu/conv_forward.cpp, conv_backward.cpp)
on a shape that the kernels' own path choice, _core.conv2d_paths, says takes it, on every ISA
path and 1 / 2 threads, against the float64 reference of test_kernels_conv.py; and a check
that every path name the binding can give is covered here."""

import numpy as np
import pytest

from dlfast import _core, ops
from test_kernels_conv import case_id, check_against_reference, make, ref_conv_backward, tol

KEYS = ("forward", "dx", "dw")

# (case as in test_kernels_conv.CASES, need_dx, the paths {forward, dx, dw} on every ISA)
PATH_CASES = [
    ((2, 5, 6, 4, 1, 1, 3, (1, 1), "valid", (1, 1)), True,        # 1x1 stride 1
     ("pointwise", "pointwise", "pointwise")),
    ((2, 6, 6, 0, 3, 3, 4, (1, 1), "same", (1, 1)), True,         # no input channel: L = 0
     ("pointwise", "pointwise", "pointwise")),
    ((2, 10, 30, 3, 3, 3, 8, (1, 1), "same", (1, 1)), True,       # S*C = 9, Q = 30, L = 27
     ("direct", "by_forward", "in_place")),
    ((2, 6, 34, 2, 3, 3, 16, (1, 1), "valid", (1, 1)), True,      # 'valid': dx scattered
     ("direct", "col2im", "in_place")),
    ((2, 9, 8, 11, 3, 3, 20, (1, 2), "same", (1, 1)), True,       # S*C = 33, L = 99, K = 20
     ("packed", "col2im", "in_place")),
    ((2, 8, 8, 20, 3, 3, 6, (1, 1), "same", (1, 1)), True,        # L = 180 > 144
     ("packed", "by_forward", "im2col")),
    ((2, 9, 9, 24, 3, 3, 7, (2, 2), "valid", (1, 1)), True,       # stride 2, L = 216
     ("packed", "col2im", "im2col")),
    ((0, 5, 5, 2, 3, 3, 4, (1, 1), "same", (1, 1)), True,         # no image
     ("empty", "empty", "empty")),
    ((2, 5, 5, 2, 3, 3, 0, (1, 1), "same", (1, 1)), True,         # no filter
     ("empty", "empty", "empty")),
    ((2, 10, 30, 3, 3, 3, 8, (1, 1), "same", (1, 1)), False,      # dx not asked for
     ("direct", "none", "in_place")),
    ((2, 9, 9, 24, 3, 3, 7, (2, 2), "valid", (1, 1)), False,
     ("packed", "none", "im2col")),
]
ACTS = [("relu", True), ("linear", False), ("tanh", True)]


def paths_of(case, dtype, need_dx=True):
    N, H, W, C, R, S, K, strides, padding, dilation = case
    return _core.conv2d_paths((N, H, W, C), (R, S, C, K), strides, padding, dilation, dtype,
                              need_dx)


def check_without_dx(case, dtype, act, use_bias, rng):
    """conv2d_backward asked for no dx: None, and dkernel / dbias as the reference's."""
    x, w, b, dy, kw = make(case, dtype, rng, use_bias)
    st, pad, dil = kw["strides"], kw["padding"], kw["dilation_rate"]
    code = ops.ACTIVATIONS[act]
    y = _core.conv2d_forward(x, w, b, st, pad, dil, code)
    _, want_dw, want_db = ref_conv_backward(dy, x, w, b, st, pad, dil, act)
    dw, db = np.zeros_like(w), None if b is None else np.zeros_like(b)
    assert _core.conv2d_backward(dy, x, w, y, st, pad, dil, code, dw, db, False, False) is None
    M = dy.shape[0] * dy.shape[1] * dy.shape[2]
    np.testing.assert_allclose(dw, want_dw, rtol=0, atol=tol(dtype, M), err_msg="dkernel")
    if use_bias:
        np.testing.assert_allclose(db, want_db, rtol=0, atol=tol(dtype, M), err_msg="dbias")


@pytest.mark.parametrize("act,use_bias", ACTS, ids=[f"{a}-{'bias' if b else 'nobias'}"
                                                    for a, b in ACTS])
@pytest.mark.parametrize("case,need_dx,want", PATH_CASES,
                         ids=[f"{case_id(c)}-{'-'.join(p)}" for c, _, p in PATH_CASES])
def test_path_matches_reference(isa_threads, dtype, case, need_dx, want, act, use_bias, rng):
    assert paths_of(case, dtype, need_dx) == dict(zip(KEYS, want))
    if need_dx:
        check_against_reference(case, dtype, act, use_bias, rng)
    else:
        check_without_dx(case, dtype, act, use_bias, rng)


def test_every_path_is_covered():
    """Each name the binding can give is the expected path of some case above."""
    covered = {key: {want[i] for _, _, want in PATH_CASES} for i, key in enumerate(KEYS)}
    names = _core.conv2d_path_names()
    assert sorted(names) == sorted(KEYS)
    for key in KEYS:
        assert covered[key] == set(names[key]), key


def test_direct_needs_two_tiles_per_row(isa, rng):
    """The one ISA-dependent choice: direct tiles need Q >= 2 tiles of kMR pixels (14 on
    AVX-512, 6 on AVX2 and generic); one pixel fewer and the forward packs im2col."""
    tile = 14 if isa == "avx512" else 6
    for q, want in ((2 * tile, "direct"), (2 * tile - 1, "packed")):
        case = (2, 5, q + 2, 3, 3, 3, 8, (1, 1), "valid", (1, 1))  # Q = W - 2
        for dtype in (np.float32, np.float64):
            assert paths_of(case, dtype)["forward"] == want
            check_against_reference(case, dtype, "relu", True, rng)


@pytest.mark.parametrize("args,err,match", [
    (((1, 5, 5), (3, 3, 3, 4)), ValueError, "'x_shape' must be 4 sizes >= 0"),
    (((1, 5, -5, 3), (3, 3, 3, 4)), ValueError, "'x_shape' must be 4 sizes >= 0"),
    (((1, 5, 5, 3), (3, 3, 3, 2 ** 62)), ValueError, "'kernel_shape' must be 4 sizes"),
    (((1, 5, 5, 3), (3, 3, 2, 4)), ValueError, "expects 2 input channels"),
    (((1, 2, 5, 3), (3, 3, 3, 4)), ValueError, "padding='valid'"),
])
def test_conv2d_paths_bad_input(args, err, match):
    with pytest.raises(err, match=match):
        _core.conv2d_paths(*args, (1, 1), "valid", (1, 1), np.float32)


def test_conv2d_paths_bad_dtype():
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        _core.conv2d_paths((1, 5, 5, 3), (3, 3, 3, 4), (1, 1), "same", (1, 1), np.int32)
