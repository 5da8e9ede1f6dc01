"""Models inside models and ``trainable`` (Keras 3's semantics): a layer object held by two
models is one set of weights; ``trainable`` may be set on a layer or a whole model at any time
and is honoured at the next step of every model holding it; an optimizer's state for a weight
outlives the weight being frozen and unfrozen. The references are independent copies of the
models (same weights, trained alone) and float64 NumPy."""

import numpy as np
import pytest

import dlfast
from dlfast.layers import (LSTM, BatchNormalization, Conv2D, Conv2DTranspose, Dense, Flatten,
                           Input)
from dlfast.models import load_model
from dlfast.optimizers import SGD, Adam


def generator(seed=1):
    dlfast.manual_seed(seed)
    return dlfast.Sequential([Input((4,)), Dense(8, activation="relu"), Dense(2)],
                             name="generator", dtype="float64")


def discriminator(seed=2):
    dlfast.manual_seed(seed)
    return dlfast.Sequential([Input((2,)), Dense(8, activation="relu"),
                              Dense(1, activation="sigmoid")], name="discriminator",
                             dtype="float64")


def copy_of(model):
    """An independent model with the same config and weights (shares no array)."""
    clone = type(model).from_config(model.get_config())
    clone.build(model.input_shape)
    clone.set_weights(model.get_weights())
    for a, b in zip(clone.weights, model.weights):
        assert not np.shares_memory(a, b)
    return clone


def weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def data(rng):
    z = rng.standard_normal((16, 4))
    x = rng.standard_normal((16, 2))
    y = (rng.random((16, 1)) > 0.5).astype(np.float64)
    return z, x, y


def test_the_issue_recipe_freezes_d_in_the_gan_and_trains_it_alone(data):
    z, x, y = data
    ones = np.ones((16, 1))
    G, D = generator(), discriminator()
    D.compile(optimizer=SGD(0.1), loss="binary_crossentropy")
    gan = dlfast.Sequential([G, D])
    gan.compile(optimizer=SGD(0.1), loss="binary_crossentropy")

    D.trainable = False
    d_before, g_before = D.get_weights(), G.get_weights()
    gan.train_on_batch(z, ones)
    assert weights_equal(D.get_weights(), d_before), "a frozen D changed in the GAN's step"
    assert not weights_equal(G.get_weights(), g_before), "the GAN's step did not train G"

    D.trainable = True
    reference = copy_of(D)
    reference.compile(optimizer=SGD(0.1), loss="binary_crossentropy")
    d_loss = D.train_on_batch(x, y)
    assert d_loss == reference.train_on_batch(x, y)
    assert not weights_equal(D.get_weights(), d_before), "D's own step changed nothing"
    assert weights_equal(D.get_weights(), reference.get_weights())
    # the GAN sees D's update: its output is D's on G's
    np.testing.assert_array_equal(gan.predict(z), D.predict(G.predict(z)))


@pytest.mark.parametrize("functional", [False, True])
def test_gan_recipe_loop_matches_separate_models_step_by_step(data, functional):
    """The Keras 3 recipe, each model compiled once: D on real and fake with D.trainable =
    True, then the combined model with it False. Reference: the same arithmetic on separate
    copies of G and D whose weights are handed across by hand (float64, bit for bit)."""
    z, x, y = data
    G, D = generator(), discriminator()
    D.compile(optimizer=Adam(0.01), loss="binary_crossentropy")
    if functional:
        inp = Input((4,))
        gan = dlfast.Model(inp, D(G(inp)))
    else:
        gan = dlfast.Sequential([G, D])
    gan.compile(optimizer=Adam(0.01), loss="binary_crossentropy")
    ref_g, ref_d = copy_of(G), copy_of(D)
    ref_d.compile(optimizer=Adam(0.01), loss="binary_crossentropy")
    ref_gan_g = copy_of(G)  # G trained through a frozen copy of D
    ref_gan_g_opt = Adam(0.01)

    for step in range(4):
        fake = G.predict(z)
        D.trainable = True
        real_loss = D.train_on_batch(x, np.ones((16, 1)))
        fake_loss = D.train_on_batch(fake, np.zeros((16, 1)))
        D.trainable = False
        g_loss = gan.train_on_batch(z, np.ones((16, 1)))

        ref_fake = ref_g.predict(z)
        assert real_loss == ref_d.train_on_batch(x, np.ones((16, 1)))
        assert fake_loss == ref_d.train_on_batch(ref_fake, np.zeros((16, 1)))
        frozen_d = copy_of(ref_d)
        frozen_d.trainable = False
        combined = dlfast.Sequential([ref_gan_g, frozen_d])
        combined.compile(optimizer=ref_gan_g_opt, loss="binary_crossentropy")
        assert g_loss == combined.train_on_batch(z, np.ones((16, 1))), step
        ref_g.set_weights(ref_gan_g.get_weights())
        assert weights_equal(D.get_weights(), ref_d.get_weights()), step
        assert weights_equal(G.get_weights(), ref_g.get_weights()), step


def test_a_layer_shared_by_two_models_is_one_set_of_weights(rng):
    shared = Dense(3, name="shared")
    a = dlfast.Sequential([Input((5,)), shared, Dense(2)], dtype="float64")
    b = dlfast.Sequential([Input((5,)), shared, Dense(1)], dtype="float64")
    a.build()
    b.build()
    assert a.layers[0].weights[0] is b.layers[0].weights[0]
    a.compile(optimizer=SGD(0.1), loss="mse")
    b.compile(optimizer=SGD(0.1), loss="mse")
    x = rng.standard_normal((8, 5))
    before = shared.get_weights()
    b_out = b.predict(x)
    a.train_on_batch(x, rng.standard_normal((8, 2)))
    assert not weights_equal(shared.get_weights(), before)
    assert not np.array_equal(b.predict(x), b_out), "b does not see a's update of the layer"
    after_a = shared.get_weights()
    b.train_on_batch(x, rng.standard_normal((8, 1)))
    assert not weights_equal(shared.get_weights(), after_a), "b's step did not train the layer"
    # b's other layer and a's other layer are their own
    assert not np.shares_memory(a.layers[1].weights[0], b.layers[1].weights[0])


def test_trainable_flipped_between_steps_keeps_the_optimizer_state(rng):
    """SGD with momentum: step 1 trains, step 2 with the layer frozen changes nothing, step 3
    unfrozen continues with the velocity of step 1, as two steps of an uninterrupted run."""
    x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
    dlfast.manual_seed(3)
    model = dlfast.Sequential([Input((5,)), Dense(2)], dtype="float64")
    reference, fresh = copy_of(model), copy_of(model)
    for m in (model, reference, fresh):
        m.compile(optimizer=SGD(0.05, momentum=0.9), loss="mse")
    model.train_on_batch(x, y)
    reference.train_on_batch(x, y)
    fresh.train_on_batch(x, y)
    frozen_at = model.get_weights()
    model.layers[0].trainable = False
    model.train_on_batch(x, y)
    assert weights_equal(model.get_weights(), frozen_at)
    assert np.all(model.layers[0].grads[0] == model.layers[0].grads[0])  # finite, no NaN junk
    model.layers[0].trainable = True
    model.train_on_batch(x, y)
    reference.train_on_batch(x, y)
    assert weights_equal(model.get_weights(), reference.get_weights())
    fresh.compile(optimizer=SGD(0.05, momentum=0.9), loss="mse")  # velocity lost
    fresh.train_on_batch(x, y)
    assert not weights_equal(model.get_weights(), fresh.get_weights())


def test_model_trainable_false_freezes_every_layer_nested_included(data):
    z, _, _ = data
    G, D = generator(), discriminator()
    gan = dlfast.Sequential([G, D])
    gan.compile(optimizer=SGD(0.1), loss="mse")
    gan.trainable = False
    assert all(not layer.trainable for layer in G.layers + D.layers)
    before = gan.get_weights()
    gan.train_on_batch(z, np.ones((16, 1)))
    assert weights_equal(gan.get_weights(), before)
    assert gan.trainable_weights == [] and len(gan.non_trainable_weights) == 8
    D.trainable = True  # unfreeze a part of the frozen whole: it trains (Keras 3)
    gan.train_on_batch(z, np.ones((16, 1)))
    assert weights_equal(G.get_weights(), before[:4])
    assert not weights_equal(D.get_weights(), before[4:])


def _frozen_model(layer, input_shape):
    head = [Flatten()] if len(input_shape) > 1 and not isinstance(layer, LSTM) else []
    model = dlfast.Sequential([Input(input_shape), layer] + head + [Dense(2)], dtype="float64")
    model.build()
    return model


FROZEN_CASES = [
    (lambda: Dense(4, trainable=False), (3,)),
    (lambda: Conv2D(2, 3, trainable=False), (5, 5, 2)),
    (lambda: Conv2DTranspose(2, 3, strides=2, trainable=False), (3, 3, 2)),
    (lambda: LSTM(3, trainable=False), (4, 2)),
    (lambda: BatchNormalization(trainable=False), (3,)),
]


@pytest.mark.parametrize("make,input_shape", FROZEN_CASES,
                         ids=["Dense", "Conv2D", "Conv2DTranspose", "LSTM",
                              "BatchNormalization"])
def test_trainable_false_in_the_constructor_of_every_layer_type(make, input_shape, rng,
                                                                tmp_path):
    layer = make()
    assert layer.trainable is False
    model = _frozen_model(layer, input_shape)
    model.compile(optimizer=SGD(0.1), loss="mse")
    x = rng.standard_normal((6,) + input_shape)
    frozen, head = layer.get_weights(), model.layers[-1].get_weights()
    model.fit(x, rng.standard_normal((6, 2)), batch_size=3, epochs=2, verbose=0)
    assert weights_equal(layer.get_weights(), frozen), "a frozen layer's weights moved"
    assert not weights_equal(model.layers[-1].get_weights(), head)
    assert layer.get_config()["trainable"] is False
    lines = []
    model.summary(print_fn=lines.append)
    n_frozen = layer.count_params()
    assert f"Non-trainable params: {n_frozen:,} " in "\n".join(lines)
    model.save(tmp_path / "m.dlfast")
    loaded = load_model(tmp_path / "m.dlfast")
    assert loaded.layers[0].trainable is False and loaded.layers[-1].trainable is True
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("functional", [False, True])
def test_a_nested_model_saves_and_resumes_training_identically(data, tmp_path, functional):
    z, _, _ = data
    G, D = generator(), discriminator()
    D.trainable = False
    if functional:
        inp = Input((4,), dtype="float64", name="z")
        gan = dlfast.Model(inp, D(G(inp)), name="gan")
    else:
        gan = dlfast.Sequential([G, D], name="gan")
    nested = [m for m in gan.layers if isinstance(m, dlfast.Model)]
    gan.compile(optimizer=SGD(0.05, momentum=0.9), loss="binary_crossentropy")
    reference = copy_of(gan)
    [m for m in reference.layers if isinstance(m, dlfast.Model)][1].trainable = False
    reference.compile(optimizer=SGD(0.05, momentum=0.9), loss="binary_crossentropy")
    ones = np.ones((16, 1))
    for _ in range(2):
        gan.train_on_batch(z, ones)
        reference.train_on_batch(z, ones)
    gan.save(tmp_path / "gan.dlfast")
    loaded = load_model(tmp_path / "gan.dlfast")
    loaded_nested = [m for m in loaded.layers if isinstance(m, dlfast.Model)]
    assert [type(m).__name__ for m in loaded_nested] == ["Sequential", "Sequential"]
    assert [m.name for m in loaded_nested] == ["generator", "discriminator"] == [
        m.name for m in nested]
    assert loaded_nested[1].trainable is False and all(
        not layer.trainable for layer in loaded_nested[1].layers)
    assert loaded_nested[0].trainable and all(layer.trainable for layer in loaded_nested[0].layers)
    np.testing.assert_array_equal(loaded.predict(z), gan.predict(z))
    for _ in range(2):
        assert loaded.train_on_batch(z, ones) == reference.train_on_batch(z, ones)
    assert weights_equal(loaded.get_weights(), reference.get_weights())


def test_version_1_files_with_one_flat_optimizer_array_still_load(tmp_path, rng, monkeypatch):
    """Format version 1 saved the optimizer's state as one flat array per dtype (each weight
    16-element aligned); such a file restores the same per-weight state."""
    from dlfast import saving
    x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
    dlfast.manual_seed(4)
    model = dlfast.Sequential([Input((5,)), Dense(3), BatchNormalization(), Dense(2)],
                              dtype="float64")
    model.compile(optimizer=SGD(0.05, momentum=0.9), loss="mse")
    model.train_on_batch(x, y)
    state = saving._optimizer_state(model)
    trainable = [i for i, t in enumerate(model.weight_trainable) if t]
    sizes = [-(-model.weights[i].size // 16) * 16 for i in trainable]
    flat = np.zeros(sum(sizes))
    for i, off in zip(trainable, np.cumsum([0] + sizes)):
        flat[off:off + model.weights[i].size] = state[f"{i}/momentum"].ravel()
    tensors = {f"weights/{i}": w for i, w in enumerate(model.weights)}
    tensors.update({"optimizer/iterations": state["iterations"], "optimizer/0/momentum": flat})
    monkeypatch.setattr(saving, "FORMAT_VERSION", 1)
    saving._write(tmp_path / "v1.dlfast", tensors,
                  {"contents": "model", "model_config": saving.serialize(model),
                   "weight_names": model.weight_names,
                   "training_config": saving._training_config(model)})
    monkeypatch.setattr(saving, "FORMAT_VERSION", 2)
    loaded = load_model(tmp_path / "v1.dlfast")
    got = saving._optimizer_state(loaded)
    assert sorted(got) == sorted(state)
    for key in state:
        np.testing.assert_array_equal(got[key], state[key], err_msg=key)
    assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)


def test_a_frozen_batchnorm_runs_in_inference_mode_in_fit(rng):
    bn = BatchNormalization(trainable=False)
    model = dlfast.Sequential([Input((3,)), bn, Dense(1)], dtype="float64")
    model.compile(optimizer=SGD(0.1), loss="mse")
    x = rng.standard_normal((16, 3)) * 3 + 1
    model.fit(x, rng.standard_normal((16, 1)), epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.weights[2], 0)  # moving statistics untouched
    np.testing.assert_array_equal(bn.weights[3], 1)
