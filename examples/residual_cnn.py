"""A small residual CNN on scikit-learn's bundled digits (8x8x1): the course's "layer that
skips a level", built with the functional API, trained with fit, described with summary,
saved to one file and loaded back.

    pip install ".[examples]" && python examples/residual_cnn.py
"""

import numpy as np

import dlfast
from dlfast.callbacks import EarlyStopping
from dlfast.datasets import load_digits_split
from dlfast.layers import Add, Conv2D, Dense, Flatten, Input, MaxPooling2D, ReLU

dlfast.manual_seed(0)
x_tr, y_tr, x_te, y_te = load_digits_split(images=True)

inputs = Input((8, 8, 1))
h = Conv2D(16, 3, padding="same", activation="relu")(inputs)
# the residual block: two convolutions, then the block's input is added back (the skip)
r = Conv2D(16, 3, padding="same", activation="relu")(h)
r = Conv2D(16, 3, padding="same")(r)
h = ReLU()(Add()([h, r]))
h = Flatten()(MaxPooling2D(2)(h))
outputs = Dense(10, activation="softmax")(h)
model = dlfast.Model(inputs, outputs, name="residual_cnn")
model.summary()

model.compile(optimizer=dlfast.optimizers.SGD(0.05, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_tr, y_tr, batch_size=32, epochs=8, validation_split=0.1, verbose=2,
          callbacks=[EarlyStopping(patience=2, restore_best_weights=True)])
loss, accuracy = model.evaluate(x_te, y_te)
print(f"test loss {loss:.4f}, test accuracy {accuracy:.1%}")

model.save("residual_cnn.dlfast")
reloaded = dlfast.models.load_model("residual_cnn.dlfast")
same = np.array_equal(reloaded.predict(x_te), model.predict(x_te))
print(f"saved to residual_cnn.dlfast and loaded back: identical predictions: {same}")
