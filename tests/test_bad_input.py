"""Bad input to layers and models: ValueError / TypeError naming the argument with expected vs
actual; strided views give the right answer."""

import numpy as np
import pytest

import dlfast
from dlfast import layers
import reference as ref


@pytest.fixture
def model():
    dlfast.manual_seed(5)
    m = dlfast.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.build()
    return m


@pytest.fixture
def xy(rng):
    return rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1])


def entry_points(model, y):
    return {"predict": lambda x: model.predict(x),
            "forward": lambda x: model.forward(x),
            "evaluate": lambda x: model.evaluate(x, y[: len(x)] if np.ndim(x) else y),
            "fit": lambda x: model.fit(x, y[: len(x)] if np.ndim(x) else y, verbose=0),
            "train_on_batch": lambda x: model.train_on_batch(x, y[: len(x)] if np.ndim(x) else y)}


@pytest.mark.parametrize("entry", ["predict", "forward", "evaluate", "fit", "train_on_batch"])
def test_wrong_rank(model, xy, entry):
    _, y = xy
    call = entry_points(model, np.array([0, 1, 2, 0]))[entry]
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\), got \(4,\): "
                                         r"rank 1 where rank 2 was expected"):
        call(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\), got \(4, 4, 1\)"
                                         r": rank 3 where rank 2 was expected"):
        call(np.ones((4, 4, 1), np.float32))
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


@pytest.mark.parametrize("entry", ["predict", "forward", "evaluate", "fit", "train_on_batch"])
def test_wrong_feature_count(model, entry):
    call = entry_points(model, np.array([0, 1, 2]))[entry]
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\), got \(3, 5\)"):
        call(np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\), got \(3, 3\)"):
        call(np.ones((3, 3)))


@pytest.mark.parametrize("bad", [np.array([[1, 2, None, 4]], dtype=object),
                                 np.array([["a", "b", "c", "d"]]), "abcd",
                                 np.array([[1 + 2j, 0, 0, 0]])],
                         ids=["object", "str-array", "str", "complex"])
@pytest.mark.parametrize("entry", ["predict", "forward", "fit"])
def test_wrong_dtype(model, bad, entry):
    call = entry_points(model, np.array([0]))[entry]
    with pytest.raises(TypeError, match=r"input must hold numbers \(bool, int or float\), got "
                                        r"an array of dtype"):
        call(bad)


def test_int_and_bool_inputs_are_cast(model, rng):
    xi = rng.integers(-3, 3, (6, 4))
    np.testing.assert_allclose(model.predict(xi), model.predict(xi.astype(np.float32)))
    xb = rng.integers(0, 2, (6, 4)).astype(bool)
    np.testing.assert_allclose(model.predict(xb), model.predict(xb.astype(np.float32)))


def test_layer_wrong_feature_count_and_rank():
    layer = layers.Dense(3)
    layer.build((4,))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\), got \(2, 5\)"):
        layer.forward(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"(expected input of shape \(batch, 4\)|batch axis)"):
        layer.forward(np.float32(1))
    layer.forward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3\), got \(2, 4\)"):
        layer.backward(np.ones((2, 4), np.float32))


def test_strided_views_give_the_right_answer(model, rng):
    base = rng.standard_normal((6, 8)).astype(np.float32)
    W = [w.astype(np.float64) for w in model.get_weights()]

    def numpy_model(x):
        h = np.maximum(x.astype(np.float64) @ W[0] + W[1], 0)
        return ref.act_forward(h @ W[2] + W[3], "softmax")

    for view in (base[:, ::2], base[:, 1:5], base.T[:4].T, np.asfortranarray(base[:, :4]),
                 base[::2, ::2]):
        assert not view.flags.c_contiguous or view.base is not None
        got = model.predict(view)
        np.testing.assert_array_equal(got, model.predict(np.ascontiguousarray(view)))
        np.testing.assert_allclose(got, numpy_model(view), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(model.forward(view), got)


def test_strided_views_train_like_contiguous(rng):
    x = rng.standard_normal((8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    results = []
    for xv, yv in ((x[:, ::2], y), (np.ascontiguousarray(x[:, ::2]), y.copy())):
        dlfast.manual_seed(9)
        m = dlfast.Sequential([layers.Input((4,)), layers.Dense(5, activation="tanh"),
                               layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        loss = m.train_on_batch(xv, yv)
        results.append((loss, m.get_weights()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def test_labels_out_of_range(model, xy):
    x, _ = xy
    for y, lo, hi in (([0, 1, 2, 3, 1], 0, 3), ([0, -1, 2, 0, 1], -1, 2)):
        with pytest.raises(ValueError, match=rf"y holds class labels in \[{lo}, {hi}\], the "
                                             rf"model has 3 classes"):
            model.fit(x, np.array(y), verbose=0)
        with pytest.raises(ValueError, match=r"y holds class labels"):
            model.evaluate(x, np.array(y))
        with pytest.raises(ValueError, match=r"y holds class labels"):
            model.train_on_batch(x, np.array(y))
    with pytest.raises(ValueError, match=r"validation y holds class labels in \[0, 7\]"):
        model.fit(x, np.array([0, 1, 2, 0, 1]), validation_data=(x, np.array([0, 7, 0, 0, 0])),
                  verbose=0)


def test_y_wrong_number_of_samples(model, xy):
    x, y = xy
    for call in (lambda yy: model.fit(x, yy, verbose=0), lambda yy: model.evaluate(x, yy),
                 lambda yy: model.train_on_batch(x, yy)):
        with pytest.raises(ValueError, match=r"y: expected 5 class labels \(shape \(5,\)\), got "
                                             r"shape \(3,\)"):
            call(y[:3])
        with pytest.raises(ValueError, match=r"expected 5 class labels.*got shape \(7,\)"):
            call(np.zeros(7, int))


def test_dense_targets_wrong_shape(rng):
    m = dlfast.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rng.standard_normal((5, 4))
    with pytest.raises(ValueError, match=r"y has 4 samples, x has 5"):
        m.fit(x, np.ones((4, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 3\) to match the model's "
                                         r"output, got \(5, 4\)"):
        m.train_on_batch(x, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"got \(5,\) \(integer class labels need "
                                         r"loss='sparse_categorical_crossentropy'\)"):
        m.fit(x, np.array([0, 1, 2, 0, 1]), verbose=0)
    with pytest.raises(TypeError, match=r"y must hold numbers"):
        m.fit(x, np.array([["a"] * 3] * 5), verbose=0)


def test_sparse_label_dtype_errors(model, xy):
    x, _ = xy
    with pytest.raises(TypeError, match=r"y: sparse labels must be integers, got dtype <U1"):
        model.fit(x, np.array(list("abcde")), verbose=0)
    with pytest.raises(ValueError, match=r"y: sparse labels must be whole numbers"):
        model.fit(x, np.array([0.5, 1, 2, 0, 1]), verbose=0)


def test_model_set_weights_wrong_shapes_and_count(model):
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"set_weights expected a list of 4 arrays .* got 3"):
        model.set_weights(before[:3])
    with pytest.raises(ValueError, match=r"set_weights expected a list of 4 arrays .* got 5"):
        model.set_weights(before + [before[0]])
    with pytest.raises(ValueError, match=r"weight 0 \('dense\w*/kernel'\) expected shape "
                                         r"\(4, 8\), got \(8, 4\)"):
        model.set_weights([before[0].T] + before[1:])
    with pytest.raises(ValueError, match=r"weight 3 \('dense\w*/bias'\) expected shape \(3,\), "
                                         r"got \(4,\)"):
        model.set_weights(before[:3] + [np.zeros(4)])
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_fit_argument_checks(model, xy):
    x, y = xy
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.5"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split=0.1 of 5 samples leaves no "
                                         r"validation sample"):
        model.fit(x, y, validation_split=0.1, verbose=0)


def test_uncompiled_and_unknown_names(rng):
    m = dlfast.Sequential([layers.Input((4,)), layers.Dense(3)])
    with pytest.raises(RuntimeError, match=r"compile\(optimizer, loss\) before fit\(\)"):
        m.fit(rng.standard_normal((2, 4)), np.zeros((2, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        m.compile(optimizer="sgd", loss="hinge")
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop2'"):
        m.compile(optimizer="rmsprop2", loss="mse")
    with pytest.raises(ValueError, match=r"metric 'accuracy' needs a classification loss"):
        m.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    with pytest.raises(TypeError, match=r"add\(\) expects a dlfast layer, got str"):
        m.add("dense")
