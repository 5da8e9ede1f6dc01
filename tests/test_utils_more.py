"""dlfast.utils.to_categorical with Keras's semantics: float32 one-hot rows with the class axis
last, num_classes inferred as max + 1, a trailing axis of length 1 dropped, any input shape;
negative, non-integer and out-of-range labels refused; and its output trains a model with
categorical cross-entropy exactly as the integer labels do with the sparse loss."""

import numpy as np
import pytest

import dlfast
from dlfast.layers import Dense, Input
from dlfast.utils import to_categorical


def onehot_by_loops(labels, classes):
    """The definition, one element at a time."""
    labels = np.asarray(labels)
    out = np.zeros(labels.shape + (classes,))
    for index in np.ndindex(labels.shape):
        out[index + (int(labels[index]),)] = 1.0
    return out


def test_keras_example():
    a = to_categorical([0, 1, 2, 3], num_classes=4)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, np.eye(4))


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4), (2, 3, 2)])
def test_any_shape_with_inferred_classes(shape, rng):
    labels = rng.integers(0, 5, shape)
    labels.reshape(-1)[0] = 4  # so that max + 1 = 5
    out = to_categorical(labels)
    assert out.shape == shape + (5,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, onehot_by_loops(labels, 5))


def test_trailing_axis_of_one_is_dropped_and_num_classes_pads(rng):
    labels = rng.integers(0, 3, (6, 1))
    out = to_categorical(labels, num_classes=5)
    assert out.shape == (6, 5)
    np.testing.assert_array_equal(out, onehot_by_loops(labels[:, 0], 5))
    assert not out[:, 3:].any()
    assert to_categorical([[2]]).shape == (1, 3)   # (1, 1) -> (1, classes)
    assert to_categorical(np.array([1])).shape == (1, 2)  # 1-D (1,) stays one row


def test_scalars_lists_bools_and_whole_floats():
    np.testing.assert_array_equal(to_categorical(2, 4), [0, 0, 1, 0])
    np.testing.assert_array_equal(to_categorical([True, False]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(to_categorical(np.array([0.0, 2.0])), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(to_categorical(np.array([1, 0], np.uint8), 2.0),
                                  [[0, 1], [1, 0]])
    assert to_categorical(np.zeros(0, np.int64), 3).shape == (0, 3)


@pytest.mark.parametrize("x,num_classes,error,match", [
    ([0, -1, 2], None, ValueError, r"class labels must be >= 0, got -1"),
    ([0.5, 1.0], None, ValueError, r"class labels must be whole numbers, got 0.5"),
    ([np.nan, 1.0], None, ValueError, r"class labels must be whole numbers, got nan"),
    ([0, 3], 3, ValueError, r"class label 3 is out of range for num_classes=3"),
    ([0, 1], 0, ValueError, r"num_classes must be a positive integer, got 0"),
    ([0, 1], 2.5, ValueError, r"num_classes must be a positive integer, got 2.5"),
    ([0, 1], True, ValueError, r"num_classes must be a positive integer, got True"),
    ([], None, ValueError, r"cannot infer num_classes from no labels"),
    (["a", "b"], None, TypeError, r"x must hold integer class labels, got dtype <U1"),
])
def test_bad_labels(x, num_classes, error, match):
    with pytest.raises(error, match="to_categorical: " + match):
        to_categorical(x, num_classes)


def test_one_hot_targets_train_like_sparse_labels(rng):
    y = rng.integers(0, 3, 48)
    x = rng.standard_normal((48, 4)) + np.eye(3, 4)[y]
    runs = []
    for loss, target in [("sparse_categorical_crossentropy", y),
                         ("categorical_crossentropy", to_categorical(y))]:
        dlfast.manual_seed(4)
        model = dlfast.Sequential([Input((4,)), Dense(3, activation="softmax")])
        model.compile(dlfast.optimizers.SGD(0.1), loss)
        history = model.fit(x, target, batch_size=8, epochs=3, shuffle=False, verbose=0)
        runs.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
