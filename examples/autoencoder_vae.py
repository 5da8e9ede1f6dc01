"""The course's encoder-decoder ("réduction de dimension ... espace latent") on scikit-learn's
bundled digits (8 x 8 pixels scaled to [0, 1]), two ways, each with a 2-D and an 8-D latent
space, beside scikit-learn's PCA with as many components:

(a) an autoencoder, 64 -> hidden (relu) -> latent -> hidden (relu) -> 64 (sigmoid), written in
    Keras style as encoder and decoder Sequentials and trained with ``model.fit(x, x)`` on MSE;
(b) a variational autoencoder written by hand from the layers' forward/backward: the encoder
    gives mu and log_var (two Dense heads on one hidden layer), z = mu + exp(log_var / 2) * eps
    with eps ~ N(0, I) (the reparametrisation: z is a differentiable function of mu, log_var),
    and the decoder gives 64 logits, the pixels' Bernoulli parameters being sigmoid(logits).
    Per image the loss is
        binary cross-entropy of the 64 pixels, SUMMED over pixels (the reconstruction term)
      + KL(N(mu, diag exp(log_var)) || N(0, I))
          = -1/2 sum_j (1 + log_var_j - mu_j^2 - exp(log_var_j)),
    averaged over the batch. The KL term's gradients are written by hand:
        dKL/dmu = mu,   dKL/dlog_var = (exp(log_var) - 1) / 2,
    and the reconstruction gradient reaches mu and log_var through z:
        dz/dmu = 1,     dz/dlog_var = eps * exp(log_var / 2) / 2.
    One Adam over every layer's weights and grads takes the step.

Prints each model's test reconstruction MSE (mean over pixels; the VAE decodes its mean mu)
beside PCA's, and the VAE's loss at the first and last epoch; draws images decoded from the
prior z ~ N(0, I) and the 2-D latent codes of the test digits coloured by digit.

    pip install ".[examples]" && python examples/autoencoder_vae.py --out vae.png
"""

import argparse
import time

import numpy as np

from dlfast.datasets import load_digits_split
# the two models live in the package (python -m dlfast demo trains them too)
from dlfast.generative import VAE, kl_divergence, pca_mse, train_autoencoder, train_vae  # noqa: F401


# --- the picture ------------------------------------------------------------------------------

def montage(images, rows, cols):
    """(rows*cols, 64) images in [0, 1] as one (rows*9-1, cols*9-1) picture, with 1-pixel
    gaps of 0 (white under the gray_r colour map)."""
    canvas = np.zeros((rows * 9 - 1, cols * 9 - 1))
    for k, image in enumerate(images[:rows * cols]):
        r, c = divmod(k, cols)
        canvas[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = image.reshape(8, 8)
    return canvas


def plot(out, show, codes, y_test, samples):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(install matplotlib to draw the samples and the latent space)")
        return None
    if show:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(4.2 * (len(codes) + len(samples)), 4.4))
    else:
        from matplotlib.figure import Figure  # no pyplot: no window, no global backend
        fig = Figure(figsize=(4.2 * (len(codes) + len(samples)), 4.4))
    axes = fig.subplots(1, len(codes) + len(samples), squeeze=False)[0]
    for ax, (title, z) in zip(axes, codes.items()):
        points = ax.scatter(z[:, 0], z[:, 1], c=y_test, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    if codes:
        fig.colorbar(points, ax=axes[len(codes) - 1], ticks=range(10), label="digit")
    for ax, (title, images) in zip(axes[len(codes):], samples.items()):
        ax.imshow(montage(images, 10, 10), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return out


def main(latents=(2, 8), epochs=150, vae_epochs=150, hidden=128, batch_size=32,
         learning_rate=1e-3, seed=0, out="autoencoder_vae.png", show=False):
    """Trains both models for every latent size; prints the quality numbers and returns
    {"pca_mse", "ae_mse", "vae_mse", "vae_history": {latent: ...}, "png": path or None}."""
    start = time.perf_counter()
    x_train, _, x_test, y_test = load_digits_split()
    result = {"pca_mse": {}, "ae_mse": {}, "vae_mse": {}, "vae_history": {}}
    codes, samples = {}, {}
    rng = np.random.default_rng(seed + 1)
    print(f"digits, {len(x_train)} training / {len(x_test)} test images of 64 pixels in [0, 1]; "
          f"hidden {hidden}; test reconstruction MSE per pixel:")
    for latent in latents:
        pca = pca_mse(x_train, x_test, latent, seed)
        encoder, autoencoder = train_autoencoder(x_train, latent, hidden, epochs, batch_size,
                                                 learning_rate, seed)
        ae = float(np.mean((autoencoder.predict(x_test, batch_size=len(x_test)) - x_test) ** 2))
        vae, history = train_vae(x_train, latent, hidden, vae_epochs, batch_size,
                                 learning_rate, seed)
        vae_mse = vae.reconstruction_mse(x_test)
        result["pca_mse"][latent], result["ae_mse"][latent] = pca, ae
        result["vae_mse"][latent], result["vae_history"][latent] = vae_mse, history
        print(f"latent {latent}: PCA test MSE {pca:.5f}, autoencoder test MSE {ae:.5f} "
              f"({epochs} epochs), VAE test MSE {vae_mse:.5f} ({vae_epochs} epochs; loss "
              f"BCE-sum + KL per image {history[0]:.2f} -> {history[-1]:.2f})")
        if latent == 2:
            codes["autoencoder, 2-D codes of the test digits"] = encoder.predict(x_test)
            codes["VAE, 2-D mu of the test digits"] = vae.encode(x_test)[0]
        samples[f"VAE {latent}-D: decoded from z ~ N(0, I)"] = vae.decode(
            rng.standard_normal((100, latent)))
    result["png"] = plot(out, show, codes, y_test, samples)
    print(f"time {time.perf_counter() - start:.2f}s")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latents", type=int, nargs="+", default=[2, 8])
    p.add_argument("--epochs", type=int, default=150, help="autoencoder epochs")
    p.add_argument("--vae-epochs", type=int, default=150)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="autoencoder_vae.png", help="where the PNG goes")
    p.add_argument("--show", action="store_true", help="also open a window")
    args = p.parse_args()
    main(latents=tuple(args.latents), epochs=args.epochs, vae_epochs=args.vae_epochs,
         hidden=args.hidden, seed=args.seed, out=args.out, show=args.show)
