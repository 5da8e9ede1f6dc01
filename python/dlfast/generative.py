"""The course's generative models on scikit-learn's digits, as functions the examples
(gan_digits.py, autoencoder_vae.py) and ``python -m dlfast demo`` share: a DCGAN (generator,
discriminator, the Keras 3 training recipe) and the measure of its samples' quality (a digits
CNN classifies them: the share it is confident about, and how many of the 10 classes appear,
the course's "mode collapse"); a Dense autoencoder trained with fit(x, x) and a variational
autoencoder written by hand from the layers' forward/backward (examples/autoencoder_vae.py's
docstring derives its loss and gradients), beside PCA.

    G, D = dcgan_generator(), dcgan_discriminator()
    gan = train_gan(G, D, digits_images()[0], epochs=60)
    quality = gan_quality(G, trained_digits_classifier()[0])

The Keras 3 recipe, each model compiled once: D alone trains on real and fake images with
``D.trainable = True``; the combined model ``Sequential([G, D])`` trains G through D with
``D.trainable = False``. The two models hold the same D layers (one set of weights), and the
flag is read at every step."""

import numpy as np

from . import ops, optimizers
from ._random import manual_seed
from .layers import (Conv2D, Conv2DTranspose, Dense, Dropout, Flatten, Input, LeakyReLU,
                     MaxPooling2D, Reshape, UpSampling2D)
from .models import Sequential

LATENT_DIM = 32


def digits_images(test_size=0.25, seed=0):
    """(x_train, y_train, x_test, y_test): digits as (n, 8, 8, 1) images in [-1, 1] (the
    generator's tanh range)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=test_size,
                                              random_state=seed, stratify=d.target)
    return x_tr, y_tr, x_te, y_te


def dcgan_generator(latent_dim=LATENT_DIM, upsampling="transpose"):
    """z (latent_dim,) -> Dense -> Reshape (4, 4, 64) -> 2x up (a stride-2 Conv2DTranspose, or
    UpSampling2D then a 3x3 Conv2D with ``upsampling='nearest'``) -> 3x3 Conv2D, tanh: an
    (8, 8, 1) image in [-1, 1]."""
    if upsampling == "transpose":
        up = [Conv2DTranspose(32, 4, strides=2, padding="same")]
    elif upsampling == "nearest":
        up = [UpSampling2D(2), Conv2D(32, 3, padding="same")]
    else:
        raise ValueError(f"upsampling must be 'transpose' or 'nearest', got {upsampling!r}")
    return Sequential([Input((latent_dim,)), Dense(4 * 4 * 64), LeakyReLU(0.2),
                       Reshape((4, 4, 64))] + up +
                      [LeakyReLU(0.2), Conv2D(1, 3, padding="same", activation="tanh")],
                      name="generator")


def dcgan_discriminator(dropout=0.3):
    """(8, 8, 1) image -> two stride-2 3x3 Conv2D + LeakyReLU(0.2), Dropout -> Dense sigmoid:
    the probability that the image is a real digit."""
    return Sequential([Input((8, 8, 1)),
                       Conv2D(32, 3, strides=2, padding="same"), LeakyReLU(0.2),
                       Dropout(dropout),
                       Conv2D(64, 3, strides=2, padding="same"), LeakyReLU(0.2),
                       Dropout(dropout),
                       Flatten(), Dense(1, activation="sigmoid")], name="discriminator")


def compile_gan(G, D, learning_rate=1e-3, beta_1=0.5):
    """Compile D alone and the combined model ``Sequential([G, D])`` (each once, Adam with the
    DCGAN paper's beta_1 = 0.5, binary cross-entropy); returns the combined model."""
    D.compile(optimizer=optimizers.Adam(learning_rate, beta_1=beta_1),
              loss="binary_crossentropy")
    gan = Sequential([G, D], name="gan")
    gan.compile(optimizer=optimizers.Adam(learning_rate, beta_1=beta_1),
                loss="binary_crossentropy")
    return gan


def gan_step(G, D, gan, real, z_fake, z_gen):
    """One step of the recipe: D on real (label 1) and fake (label 0) images with
    ``D.trainable = True``, then G through the frozen D (fake labelled 1). Returns
    (d_loss, g_loss)."""
    n = len(real)
    fake = G.predict(z_fake, batch_size=len(z_fake))
    D.trainable = True
    d_loss = D.train_on_batch(np.concatenate([real, fake]),
                              np.concatenate([np.ones((n, 1), np.float32),
                                              np.zeros((len(fake), 1), np.float32)]))
    D.trainable = False
    g_loss = gan.train_on_batch(z_gen, np.ones((len(z_gen), 1), np.float32))
    return d_loss, g_loss


def train_gan(G, D, x, epochs=60, batch_size=64, learning_rate=1e-3, seed=0, on_epoch=None):
    """Train G and D on images x with the Keras 3 recipe; ``on_epoch(epoch, d_loss, g_loss)``
    after each epoch (mean losses). Returns the combined model."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    gan = compile_gan(G, D, learning_rate)
    latent = G.input_shape[0]
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for lo in range(0, len(x) - batch_size + 1, batch_size):
            z = rng.standard_normal((2 * batch_size, latent)).astype(np.float32)
            losses.append(gan_step(G, D, gan, x[order[lo:lo + batch_size]], z[:batch_size],
                                   z[batch_size:]))
        if on_epoch is not None:
            d_loss, g_loss = np.mean(losses, axis=0)
            on_epoch(epoch, float(d_loss), float(g_loss))
    D.trainable = True
    return gan


def digits_classifier():
    """A small CNN for (8, 8, 1) digits in [-1, 1]: the judge of the GAN's samples."""
    return Sequential([Input((8, 8, 1)), Conv2D(32, 3, padding="same", activation="relu"),
                       Conv2D(64, 3, padding="same", activation="relu"), MaxPooling2D(2),
                       Flatten(), Dense(64, activation="relu"), Dense(10, activation="softmax")],
                      name="digits_judge")


def trained_digits_classifier(epochs=15, seed=0):
    """(classifier, test accuracy) of digits_classifier trained on digits_images."""
    manual_seed(seed)
    x_tr, y_tr, x_te, y_te = digits_images()
    model = digits_classifier()
    model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_tr, y_tr, batch_size=32, epochs=epochs, verbose=0)
    return model, float(model.evaluate(x_te, y_te)[1])


def gan_quality(G, classifier, n=1000, threshold=0.9, seed=1):
    """The classifier's view of n samples of G: {"confident_share": share classified with
    probability > threshold, "classes_present": number of digits among those confident
    samples, "class_counts": their count per digit}."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, G.input_shape[0])).astype(np.float32)
    p = classifier.predict(G.predict(z, batch_size=256), batch_size=256)
    confident = p.max(axis=1) > threshold
    counts = np.bincount(p.argmax(axis=1)[confident], minlength=10)
    return {"confident_share": float(confident.mean()),
            "classes_present": int(np.count_nonzero(counts)), "class_counts": counts.tolist()}


# --- autoencoders -----------------------------------------------------------------------------
def pca_mse(x_train, x_test, latent, seed=0):
    """Test reconstruction MSE of scikit-learn's PCA with `latent` components."""
    from sklearn.decomposition import PCA
    pca = PCA(n_components=latent, random_state=seed).fit(x_train)
    return float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2))


# --- (a) the autoencoder, Keras style -------------------------------------------------------

def train_autoencoder(x_train, latent, hidden, epochs, batch_size, learning_rate, seed):
    """(encoder, autoencoder): Sequentials trained with autoencoder.fit(x, x) on MSE."""
    manual_seed(seed)
    encoder = Sequential([Input((64,)), Dense(hidden, activation="relu"), Dense(latent)])
    decoder = Sequential([Input((latent,)), Dense(hidden, activation="relu"),
                                 Dense(64, activation="sigmoid")])
    autoencoder = Sequential([Input((64,)), encoder, decoder])
    autoencoder.compile(optimizer=optimizers.Adam(learning_rate), loss="mse")
    autoencoder.fit(x_train, x_train, batch_size=batch_size, epochs=epochs, verbose=0)
    return encoder, autoencoder


# --- (b) the VAE, by hand ---------------------------------------------------------------------

def kl_divergence(mu, log_var):
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per row, averaged over the batch, and its
    gradients: (mean KL, dKL/dmu, dKL/dlog_var), mu and log_var (batch, latent)."""
    n = mu.shape[0]
    var = np.exp(log_var)
    kl = -0.5 * np.sum(1.0 + log_var - mu * mu - var) / n
    return float(kl), mu / n, 0.5 * (var - 1.0) / n


class VAE:
    """Encoder 64 -> hidden (relu) -> (mu, log_var), decoder latent -> hidden (relu) -> 64
    logits; every layer a dlfast Dense run through forward/backward."""

    def __init__(self, latent, hidden=128, dtype="float32"):
        self.latent, self.dtype = latent, np.dtype(dtype)
        self.hidden = Dense(hidden, activation="relu", dtype=dtype)
        self.mu_head = Dense(latent, dtype=dtype)
        self.log_var_head = Dense(latent, dtype=dtype)
        self.decoder = [Dense(hidden, activation="relu", dtype=dtype), Dense(64, dtype=dtype)]
        self.hidden.build((64,))
        self.mu_head.build((hidden,))
        self.log_var_head.build((hidden,))
        self.decoder[0].build((latent,))
        self.decoder[1].build((hidden,))
        self.layers = [self.hidden, self.mu_head, self.log_var_head, *self.decoder]
        self.weights = [w for layer in self.layers for w in layer.weights]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def encode(self, x, training=False):
        h = self.hidden.forward(x, training=training)
        return self.mu_head.forward(h, training=training), self.log_var_head.forward(h, training)

    def decode_logits(self, z, training=False):
        for layer in self.decoder:
            z = layer.forward(z, training=training)
        return z

    def decode(self, z):
        """The pixels' means, sigmoid(logits), in [0, 1]."""
        return ops.sigmoid_forward(self.decode_logits(np.ascontiguousarray(z, self.dtype)))

    def loss_and_grads(self, x, eps):
        """One forward and backward pass on the batch x (batch, 64) with the noise eps
        (batch, latent): sets every layer's grads to the gradient of the mean per-image loss
        and returns (loss, reconstruction term, KL term)."""
        for layer in self.layers:
            layer.zero_grad()
        mu, log_var = self.encode(x, training=True)
        std = np.exp(0.5 * log_var)
        z = mu + std * eps                                   # the reparametrisation
        logits = self.decode_logits(z, training=True)
        pixels = x.shape[1]
        # the kernel's BCE is the mean over batch AND pixels; the VAE sums over pixels
        reconstruction = pixels * ops.binary_crossentropy_forward(x, logits, from_logits=True)
        dlogits = pixels * ops.binary_crossentropy_backward(x, logits, from_logits=True)
        kl, dmu, dlog_var = kl_divergence(mu, log_var)
        dz = dlogits
        for layer in reversed(self.decoder):
            dz = layer.backward(dz)
        dmu = dmu + dz                                       # dz/dmu = 1
        dlog_var = dlog_var + dz * eps * 0.5 * std           # dz/dlog_var = eps std / 2
        dh = self.mu_head.backward(dmu) + self.log_var_head.backward(dlog_var)
        self.hidden.backward(dh)
        return reconstruction + kl, reconstruction, kl

    def reconstruction_mse(self, x):
        mu, _ = self.encode(x)
        return float(np.mean((self.decode(mu) - x) ** 2))


def train_vae(x_train, latent, hidden, epochs, batch_size, learning_rate, seed):
    """A VAE trained by the hand-written loop; returns it and its mean loss per epoch."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    vae = VAE(latent, hidden)
    optimizer = optimizers.Adam(learning_rate)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for start in range(0, len(order), batch_size):
            x = x_train[order[start:start + batch_size]]
            eps = rng.standard_normal((len(x), latent)).astype(vae.dtype)
            loss, _, _ = vae.loss_and_grads(x, eps)
            optimizer.apply(vae.grads, vae.weights)
            total += float(loss) * len(x)
        history.append(total / len(x_train))
    return vae, history



__all__ = ["pca_mse", "train_autoencoder", "kl_divergence", "VAE", "train_vae", "digits_images", "dcgan_generator", "dcgan_discriminator", "compile_gan",
           "gan_step", "train_gan", "digits_classifier", "trained_digits_classifier",
           "gan_quality"]
