"""The course's "pure Python" exercise, fast: the iris network trained by a hand-written loop
over layer.forward / layer.backward and an optimizer, exactly as the course writes it —
weights 0.1 * randn, zero biases, one-hot labels, softmax + cross-entropy, mini-batch SGD.

    pip install ".[examples]" && python examples/iris_by_hand.py
"""

import numpy as np

import dlfast
from dlfast import ops
from dlfast.datasets import load_iris_split
from dlfast.layers import Dense

dlfast.manual_seed(0)
rng = np.random.default_rng(0)
x_train, y_train, x_test, y_test = load_iris_split(test_size=0.3)
onehot = np.eye(3, dtype=np.float32)[y_train]

# The network: Dense layers without activation, then ReLU by hand, as in the course.
layers = [Dense(32, activation="relu"), Dense(16, activation="relu"), Dense(3)]
fan_in = 4
for layer in layers:
    layer.build((fan_in,))
    layer.set_weights([0.1 * rng.standard_normal((fan_in, layer.units)), np.zeros(layer.units)])
    fan_in = layer.units
weights = [w for layer in layers for w in layer.weights]
grads = [g for layer in layers for g in layer.grads]
optimizer = dlfast.optimizers.SGD(learning_rate=0.1)

batch_size, epochs = 16, 100
for epoch in range(epochs):
    order = rng.permutation(len(x_train))
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for layer in layers:
            layer.zero_grad()
        # forward: the last layer gives logits
        h = x_train[idx]
        for layer in layers:
            h = layer.forward(h, training=True)
        # softmax + cross-entropy from the logits, and its gradient, in one stable kernel
        loss = ops.categorical_crossentropy_forward(onehot[idx], h, from_logits=True)
        dh = ops.categorical_crossentropy_backward(onehot[idx], h, from_logits=True)
        # backward: each layer adds its weight gradients and returns the input gradient
        for layer in reversed(layers):
            dh = layer.backward(dh)
        optimizer.apply(grads, weights)
        total += loss * len(idx)
    if (epoch + 1) % 20 == 0:
        print(f"epoch {epoch + 1:3d}: mean training loss {total / len(x_train):.4f}")

h = x_test
for layer in layers:
    h = layer.forward(h)
accuracy = np.mean(h.argmax(axis=1) == y_test)
print(f"test accuracy {accuracy:.1%}")
