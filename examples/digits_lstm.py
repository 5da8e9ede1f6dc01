"""The digits as sequences: each 8x8 image read row by row, 8 time steps of 8 pixels, by an
LSTM(64) and a softmax Dense layer (the course's recurrent example on bundled data).

    python examples/digits_lstm.py
"""

import dlfast
from dlfast import datasets
from dlfast.layers import LSTM, Dense, Input


def main():
    dlfast.manual_seed(0)
    x_tr, y_tr, x_te, y_te = datasets.load_digits_split(sequences=True)  # (n, 8, 8)
    model = dlfast.Sequential([Input((8, 8)), LSTM(64), Dense(10, activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x_tr, y_tr, batch_size=32, epochs=20, validation_data=(x_te, y_te), verbose=2)
    loss, accuracy = model.evaluate(x_te, y_te)
    print(f"test loss {loss:.4f}, test accuracy {100 * accuracy:.1f}%")


if __name__ == "__main__":
    main()
