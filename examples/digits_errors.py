"""The course's exercise "run predict and look at the errors": train a small CNN on
scikit-learn's bundled digits, list the misclassified test images, and plot them when
matplotlib is installed (saved to digits_errors.png).

    pip install ".[examples]" && python examples/digits_errors.py
"""

import numpy as np

import dlfast
from dlfast.datasets import load_digits_split
from dlfast.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

dlfast.manual_seed(0)
x_tr, y_tr, x_te, y_te = load_digits_split(images=True)
model = dlfast.Sequential([
    Input((8, 8, 1)),
    Conv2D(32, 3, padding="same", activation="relu"),
    Conv2D(64, 3, padding="same", activation="relu"),
    MaxPooling2D(2),
    Flatten(),
    Dense(10, activation="softmax"),
])
model.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_tr, y_tr, batch_size=32, epochs=8, verbose=0)

probabilities = model.predict(x_te)
predicted = probabilities.argmax(axis=1)
wrong = np.nonzero(predicted != y_te)[0]
print(f"test accuracy {np.mean(predicted == y_te):.1%}: {len(wrong)} of {len(y_te)} wrong")
for i in wrong:
    print(f"  test image {i:3d}: true {y_te[i]}, predicted {predicted[i]} "
          f"(p={probabilities[i, predicted[i]]:.2f}; true class p={probabilities[i, y_te[i]]:.2f})")
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (y_te, predicted), 1)
print("confusion matrix (rows: true digit, columns: predicted):")
print(confusion)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(install matplotlib to plot the misclassified images)")
else:
    cols = max(1, min(8, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x_te[i, :, :, 0], cmap="gray_r")
        ax.set_title(f"{y_te[i]} -> {predicted[i]}", fontsize=9)
    fig.savefig("digits_errors.png", dpi=100, bbox_inches="tight")
    print("wrote digits_errors.png")
