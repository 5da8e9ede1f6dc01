"""activation='leaky_relu' on the kernel layers (Dense, Conv2D, Conv2DTranspose): the same as
the linear layer followed by NumPy's leaky ReLU with Keras's slope 0.2, and backward matches
finite differences."""

import numpy as np
import pytest

from dlfast.layers import Conv2D, Conv2DTranspose, Dense
from dlfast.utils import gradcheck

MAKERS = {
    "Dense": (lambda act: Dense(5, activation=act), (7,)),
    "Conv2D": (lambda act: Conv2D(3, 3, padding="same", activation=act), (5, 5, 2)),
    "Conv2DTranspose": (lambda act: Conv2DTranspose(3, 3, strides=2, padding="same",
                                                    activation=act), (3, 4, 2)),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_leaky_relu_equals_linear_then_numpy_leaky(kind, rng):
    make, shape = MAKERS[kind]
    leaky, linear = make("leaky_relu"), make(None)
    x = rng.standard_normal((4,) + shape)
    leaky.build(shape)
    linear.build(shape)
    linear.set_weights(leaky.get_weights())
    z = linear.forward(x)
    np.testing.assert_allclose(leaky.forward(x), np.where(z > 0, z, 0.2 * z), rtol=1e-6,
                               atol=1e-7)
    assert np.any(z < 0) and np.any(z > 0)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_leaky_relu_backward_against_finite_differences(kind):
    make, shape = MAKERS[kind]
    gradcheck(make("leaky_relu"), shape, batch_size=3).raise_if_failed()
