"""The course's architectures ("VGG16 : CNN, bonne qualité, 16 couches, 138M param";
"Inception (GoogLeNet) : plusieurs filtres de taille différente au même niveau, astuce 1x1";
AlexNet's layer list). Two small ones are trained on scikit-learn's bundled digits (8x8x1):

* a VGG-style stack: blocks of two 3x3 'same' convolutions then a 2x2 max pooling, twice,
  then Dense layers;
* an Inception block (Szegedy et al. 2015, figure 2b): four branches side by side on the same
  input, a 1x1 convolution; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pooling (stride 1, 'same')
  then 1x1, joined along the channels by Concatenate. The 1x1 convolutions before the 3x3 and
  5x5 ones shrink the channels those see (the course's "astuce 1x1": fewer parameters).

Their test accuracy is printed and drawn per epoch (a PNG). Then the full-size VGG16
(224x224x3, 1000 classes) and AlexNet (227x227x3) are declared and their model.summary()
printed: built only, never run (their kernels start at zeros, so building them is quick;
138 M and 62 M parameters are 0.55 and 0.25 GB of float32 weights, as much again for the
gradients).

    pip install ".[examples]" && python examples/inception_vgg.py
"""

import argparse
import re
import time

import numpy as np

import dlfast
from dlfast.datasets import load_digits_split
from dlfast.layers import Concatenate, Conv2D, Dense, Flatten, Input, MaxPooling2D


# --- small models, trained on digits -----------------------------------------------------------

def vgg_style(filters=(16, 32), dense=64):
    """Conv-Conv-Pool blocks (3x3 'same', relu), then Flatten -> Dense -> Dense(10)."""
    layers = [Input((8, 8, 1))]
    for f in filters:
        layers += [Conv2D(f, 3, padding="same", activation="relu"),
                   Conv2D(f, 3, padding="same", activation="relu"),
                   MaxPooling2D(2)]
    layers += [Flatten(), Dense(dense, activation="relu"), Dense(10, activation="softmax")]
    return dlfast.Sequential(layers, name="vgg_style")


def inception_block(x, f1=8, f3_reduce=8, f3=16, f5_reduce=4, f5=8, pool_proj=8):
    """GoogLeNet's block on the symbolic tensor x: the branches' outputs, concatenated along
    the channels (f1 + f3 + f5 + pool_proj of them, same height and width as x)."""
    branch1 = Conv2D(f1, 1, activation="relu")(x)
    branch3 = Conv2D(f3_reduce, 1, activation="relu")(x)
    branch3 = Conv2D(f3, 3, padding="same", activation="relu")(branch3)
    branch5 = Conv2D(f5_reduce, 1, activation="relu")(x)
    branch5 = Conv2D(f5, 5, padding="same", activation="relu")(branch5)
    branch_pool = MaxPooling2D(3, strides=1, padding="same")(x)
    branch_pool = Conv2D(pool_proj, 1, activation="relu")(branch_pool)
    return Concatenate()([branch1, branch3, branch5, branch_pool])


def inception_net(stem=16):
    """A 3x3 stem convolution, one Inception block, 2x2 pooling, Flatten -> Dense(10)."""
    x = Input((8, 8, 1))
    y = Conv2D(stem, 3, padding="same", activation="relu")(x)
    y = inception_block(y)
    y = MaxPooling2D(2)(y)
    y = Dense(10, activation="softmax")(Flatten()(y))
    return dlfast.Model(x, y, name="inception")


def train(model, data, epochs, batch_size, learning_rate):
    """Adam on sparse cross-entropy; returns (test accuracy, its value after each epoch,
    seconds). The per-epoch test accuracy is only drawn, never used to choose anything."""
    x_tr, y_tr, x_te, y_te = data
    model.compile(optimizer=dlfast.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    history = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, verbose=0,
                        validation_data=(x_te, y_te))
    seconds = time.perf_counter() - t0
    accuracy = float(np.mean(model.predict(x_te).argmax(axis=1) == y_te))
    return accuracy, history.history["val_accuracy"], seconds


def plot(out, show, curves):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(install matplotlib to plot the accuracy curves)")
        return None
    if show:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(6, 4))
    else:
        from matplotlib.figure import Figure  # no pyplot: no window, no global backend
        fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), 100 * np.asarray(values), marker="o", ms=3,
                label=label)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Digits (8x8x1): VGG-style stack vs Inception block")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return out


# --- the full-size reference models: declared and summarised, never run ----------------------

def vgg16(kernel_initializer="zeros"):
    """VGG16 (configuration D of Simonyan & Zisserman, Keras's keras.applications.VGG16 with
    include_top): 13 3x3 'same' convolutions in 5 blocks, each block ending in a 2x2 pooling,
    then Dense 4096, 4096, 1000."""
    layers = [Input((224, 224, 3))]
    for convs, f in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
        layers += [Conv2D(f, 3, padding="same", activation="relu",
                          kernel_initializer=kernel_initializer) for _ in range(convs)]
        layers.append(MaxPooling2D(2))
    layers += [Flatten(),
               Dense(4096, activation="relu", kernel_initializer=kernel_initializer),
               Dense(4096, activation="relu", kernel_initializer=kernel_initializer),
               Dense(1000, activation="softmax", kernel_initializer=kernel_initializer)]
    return dlfast.Sequential(layers, name="vgg16")


def alexnet(kernel_initializer="zeros"):
    """AlexNet as the course lists it (one tower, 227x227x3): conv 96 11x11 stride 4, max pool
    3x3 stride 2, conv 256 5x5 (pad 2 = 'same'), pool, conv 384, 384, 256 3x3 (pad 1 =
    'same'), pool, then Dense 4096, 4096, 1000."""
    k = dict(activation="relu", kernel_initializer=kernel_initializer)
    return dlfast.Sequential([
        Input((227, 227, 3)),
        Conv2D(96, 11, strides=4, **k),
        MaxPooling2D(3, strides=2),
        Conv2D(256, 5, padding="same", **k),
        MaxPooling2D(3, strides=2),
        Conv2D(384, 3, padding="same", **k),
        Conv2D(384, 3, padding="same", **k),
        Conv2D(256, 3, padding="same", **k),
        MaxPooling2D(3, strides=2),
        Flatten(),
        Dense(4096, **k),
        Dense(4096, **k),
        Dense(1000, activation="softmax", kernel_initializer=kernel_initializer),
    ], name="alexnet")


def summary_total(build):
    """Builds a model, prints its summary and returns the "Total params" it printed."""
    model = build()
    lines = []
    model.summary(print_fn=lines.append)
    print("\n".join(lines))
    return int(re.search(r"Total params: ([\d,]+)", "\n".join(lines)).group(1).replace(",", ""))


def main(epochs=15, batch_size=32, learning_rate=2e-3, seed=0, summaries=True,
         out="inception_vgg.png", show=False):
    """Trains both small models on digits, prints their test accuracy and plots it per epoch,
    then (summaries=True) prints VGG16's and AlexNet's summaries. Returns the numbers in a
    dict."""
    start = time.perf_counter()
    data = load_digits_split(images=True)
    result, curves = {}, {}
    for label, build in [("VGG-style", vgg_style), ("Inception", inception_net)]:
        dlfast.manual_seed(seed)
        model = build()
        accuracy, curves[label], seconds = train(model, data, epochs, batch_size, learning_rate)
        key = label.lower().replace("-", "_")
        result[f"{key}_accuracy"], result[f"{key}_params"] = accuracy, model.count_params()
        print(f"{label} on digits ({model.count_params():,} params, {epochs} epochs, "
              f"{seconds:.1f}s): test accuracy {100 * accuracy:.1f}%")
    result["png"] = plot(out, show, curves)
    if summaries:
        # the reference counts: keras.applications.VGG16(include_top=True).count_params(),
        # and the course's AlexNet (a Keras summary of the layer list above)
        for label, build, reference, where in [
                ("VGG16", vgg16, 138_357_544, "keras.applications.VGG16"),
                ("AlexNet", alexnet, 62_378_344, "the course's AlexNet in Keras")]:
            total = summary_total(build)
            result[f"{label.lower()}_params"] = total
            print(f"{label}: Total params {total:,} ({where}: {reference:,}, "
                  f"{'the same' if total == reference else 'DIFFERENT'})")
    print(f"time {time.perf_counter() - start:.2f}s")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-summaries", dest="summaries", action="store_false",
                   help="skip VGG16's and AlexNet's summaries")
    p.add_argument("--out", default="inception_vgg.png", help="where the PNG goes")
    p.add_argument("--show", action="store_true", help="also open a window")
    main(**vars(p.parse_args()))
