"""The course's CIFAR-10 Keras model: Conv2D(32, 3x3, relu) -> MaxPooling2D -> Conv2D(64)
-> MaxPooling2D -> Conv2D(64) -> Flatten -> Dense(64) -> Dense(10).

No download is possible here, so it first runs on random data of CIFAR's shape (32x32x3, to
show the shapes, the parameter counts and the speed), then the same kind of network on
scikit-learn's bundled digits for a real accuracy.

    pip install ".[examples]" && python examples/cifar10_cnn.py
"""

import time

import numpy as np

import dlfast
from dlfast.datasets import load_digits_split
from dlfast.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

dlfast.manual_seed(0)

model = dlfast.Sequential([
    Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3)),
    MaxPooling2D((2, 2)),
    Conv2D(64, (3, 3), activation="relu"),
    MaxPooling2D((2, 2)),
    Conv2D(64, (3, 3), activation="relu"),
    Flatten(),
    Dense(64, activation="relu"),
    Dense(10, activation="softmax"),
])
model.summary()  # (None, 30, 30, 32) 896 ... (None, 4, 4, 64) 36,928
model.compile(optimizer=dlfast.optimizers.SGD(0.01, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(0)
x = rng.random((512, 32, 32, 3), dtype=np.float32)
y = rng.integers(0, 10, 512)
start = time.perf_counter()
model.fit(x, y, batch_size=64, epochs=1, verbose=2)
print(f"random CIFAR-shaped data: {512 / (time.perf_counter() - start):.0f} images/s training")

# The same layers at digits' scale (8x8x1 images, 'same' padding so the maps do not vanish).
x_tr, y_tr, x_te, y_te = load_digits_split(images=True)
digits = dlfast.Sequential([
    Input((8, 8, 1)),
    Conv2D(32, (3, 3), padding="same", activation="relu"),
    MaxPooling2D((2, 2)),
    Conv2D(64, (3, 3), padding="same", activation="relu"),
    MaxPooling2D((2, 2)),
    Conv2D(64, (3, 3), padding="same", activation="relu"),
    Flatten(),
    Dense(64, activation="relu"),
    Dense(10, activation="softmax"),
])
digits.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=0.9),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
digits.fit(x_tr, y_tr, batch_size=32, epochs=15, verbose=0)
loss, accuracy = digits.evaluate(x_te, y_te)
print(f"digits CNN: test accuracy {accuracy:.1%}")
