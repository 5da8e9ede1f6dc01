"""``python -m dlfast demo``: the course's networks trained on bundled data, with a table of
parameters, epochs, training time and test accuracy."""

import time

import numpy as np

from . import callbacks, datasets, optimizers
from ._random import manual_seed
from .layers import LSTM, Conv2D, Dense, Flatten, Input, MaxPooling2D
from .models import Sequential


class _EpochBar(callbacks.Callback):
    """A progress bar over epochs (tqdm when installed, else one line per tenth)."""

    def __init__(self, title, epochs):
        super().__init__()
        self.title, self.epochs = title, epochs
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=epochs, desc=title, unit="epoch", leave=True, disable=None)
        except ImportError:
            self.bar = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs.get('loss', 0):.4f}",
                                 acc=f"{logs.get('accuracy', 0):.3f}")
            self.bar.update(1)
        elif (epoch + 1) % max(1, self.epochs // 10) == 0:
            print(f"{self.title}: epoch {epoch + 1}/{self.epochs} loss {logs.get('loss', 0):.4f}")

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def iris_model():
    """The course's iris network: 4 -> 32 -> 16 -> 3, ReLU, softmax."""
    return Sequential([Input((4,)), Dense(32, activation="relu"), Dense(16, activation="relu"),
                       Dense(3, activation="softmax")], name="iris_mlp")


def digits_mlp():
    return Sequential([Input((64,)), Dense(128, activation="relu"), Dense(64, activation="relu"),
                       Dense(10, activation="softmax")], name="digits_mlp")


def digits_cnn():
    """Two 3x3 'same' convolutions (32 and 64 filters), max pooling, a softmax Dense layer."""
    return Sequential([Input((8, 8, 1)), Conv2D(32, 3, padding="same", activation="relu"),
                       Conv2D(64, 3, padding="same", activation="relu"), MaxPooling2D(2),
                       Flatten(), Dense(10, activation="softmax")], name="digits_cnn")


def digits_lstm():
    """Each digit read as 8 time steps of 8 pixels (its rows): LSTM(64), a softmax Dense."""
    return Sequential([Input((8, 8)), LSTM(64), Dense(10, activation="softmax")],
                      name="digits_lstm")


def _train(title, model, data, epochs, batch_size, optimizer):
    x_tr, y_tr, x_te, y_te = data
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    bar = _EpochBar(title, epochs)
    start = time.perf_counter()
    model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[bar])
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_te, y_te)
    return {"model": title, "params": model.count_params(), "epochs": epochs,
            "train_s": seconds, "test_acc": accuracy}


def run_demo(quick=False):
    from . import info
    i = info()
    print(f"dlfast {i['version']}: CPU kernels '{i['cpu_isa']}', {i['num_threads']} threads")
    manual_seed(0)
    scale = 0.2 if quick else 1.0
    rows = [
        _train("iris 4-32-16-3 (Dense)", iris_model(), datasets.load_iris_split(),
               max(1, int(200 * scale)), 16, optimizers.SGD(0.05, momentum=0.9)),
        _train("digits 64-128-64-10 (Dense)", digits_mlp(), datasets.load_digits_split(),
               max(1, int(40 * scale)), 32, optimizers.SGD(0.05, momentum=0.9)),
        _train("digits 8x8x1 CNN (Conv2D)", digits_cnn(), datasets.load_digits_split(images=True),
               max(1, int(10 * scale)), 32, optimizers.SGD(0.05, momentum=0.9)),
        _train("digits 8 steps x 8 px (LSTM)", digits_lstm(),
               datasets.load_digits_split(sequences=True), max(1, int(20 * scale)), 32,
               optimizers.SGD(0.1, momentum=0.9)),
    ]
    print()
    print(format_table(rows))
    generative_rows = [_gan_row(quick), _vae_row(quick)]
    print()
    print("\n".join(generative_rows))
    return rows


def _gan_row(quick):
    """The course's GAN: a DCGAN on digits (Keras 3 recipe), its 1,000 samples judged by a
    digits CNN: the share classified with confidence > 0.9 and the classes among them."""
    from . import generative
    judge, judge_acc = generative.trained_digits_classifier(epochs=3 if quick else 15)
    G, D = generative.dcgan_generator(), generative.dcgan_discriminator()
    epochs = 4 if quick else 60
    start = time.perf_counter()
    generative.train_gan(G, D, generative.digits_images()[0], epochs=epochs)
    seconds = time.perf_counter() - start
    q = generative.gan_quality(G, judge)
    return (f"GAN (DCGAN, digits, {epochs} epochs, {seconds:.1f}s): {q['classes_present']} of "
            f"10 classes among 1,000 samples, {100 * q['confident_share']:.1f}% classified "
            f"with confidence > 0.9 (judge: a digits CNN, {100 * judge_acc:.1f}% test accuracy)")


def _vae_row(quick):
    """The course's VAE (by hand from forward/backward) and autoencoder (fit(x, x)), 8-D
    latent: test reconstruction MSE beside PCA's with 8 components."""
    from . import generative
    x_tr, _, x_te, _ = datasets.load_digits_split()
    epochs = 10 if quick else 100
    start = time.perf_counter()
    _, ae = generative.train_autoencoder(x_tr, 8, 128, epochs, 32, 1e-3, 0)
    vae, _ = generative.train_vae(x_tr, 8, 128, epochs, 32, 1e-3, 0)
    seconds = time.perf_counter() - start
    ae_mse = float(np.mean((ae.predict(x_te) - x_te) ** 2))
    return (f"VAE / autoencoder (digits, 8-D latent, {epochs} epochs, {seconds:.1f}s): test "
            f"reconstruction MSE VAE {vae.reconstruction_mse(x_te):.4f}, autoencoder "
            f"{ae_mse:.4f}, PCA {generative.pca_mse(x_tr, x_te, 8):.4f}")


def format_table(rows):
    header = f"{'model':<32}{'params':>10}{'epochs':>8}{'train time':>12}{'test acc':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['model']:<32}{r['params']:>10,}{r['epochs']:>8}"
                     f"{r['train_s']:>11.2f}s{100 * r['test_acc']:>9.1f}%")
    return "\n".join(lines)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    run_demo()
