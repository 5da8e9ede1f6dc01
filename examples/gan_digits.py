"""The course's generative adversarial network on scikit-learn's bundled digits: a DCGAN.

The generator maps z ~ N(0, I) (32 numbers) through Dense -> Reshape (4, 4, 64) -> a stride-2
Conv2DTranspose (or UpSampling2D + Conv2D, ``--upsampling nearest``) -> Conv2D with tanh to
an 8 x 8 image in [-1, 1]; the discriminator is two stride-2 Conv2D + LeakyReLU + Dropout and
a sigmoid Dense. Training follows the Keras 3 recipe, each model compiled once: D trains alone
on a batch of real and a batch of fake digits with ``D.trainable = True``, then the combined
model ``Sequential([G, D])`` trains G through D with ``D.trainable = False`` (the models share
D's layers; dlfast.generative holds the code).

Quality, the course's mode collapse made a number: a digits CNN (trained here first) labels
1,000 samples; printed are the share it labels with confidence > 0.9 and how many of the 10
digits appear among those (a collapsed generator draws one or two). Writes a PNG of samples.

    pip install ".[examples]" && python examples/gan_digits.py --out gan_digits.png
"""

import argparse
import time

import numpy as np

from dlfast import generative


def main(epochs=60, batch_size=64, upsampling="transpose", seed=0, out="gan_digits.png",
         show=False, judge_epochs=15):
    """Trains the judge, then the GAN; prints and returns {"judge_accuracy",
    "confident_share", "classes_present", "class_counts", "seconds", "png"}."""
    start = time.perf_counter()
    judge, judge_accuracy = generative.trained_digits_classifier(epochs=judge_epochs, seed=seed)
    print(f"judge: a digits CNN, test accuracy {100 * judge_accuracy:.1f}%")
    x_train = generative.digits_images()[0]
    G = generative.dcgan_generator(upsampling=upsampling)
    D = generative.dcgan_discriminator()

    def report(epoch, d_loss, g_loss):
        if (epoch + 1) % max(1, epochs // 6) == 0:
            print(f"epoch {epoch + 1:3d}/{epochs}: D loss {d_loss:.3f}, G loss {g_loss:.3f}")

    gan_start = time.perf_counter()
    generative.train_gan(G, D, x_train, epochs=epochs, batch_size=batch_size, seed=seed,
                         on_epoch=report)
    gan_seconds = time.perf_counter() - gan_start
    result = generative.gan_quality(G, judge)
    result.update(judge_accuracy=judge_accuracy, seconds=gan_seconds)
    print(f"GAN samples: {result['classes_present']} of 10 classes present, "
          f"{100 * result['confident_share']:.1f}% classified with confidence > 0.9 "
          f"(per digit: {result['class_counts']}); GAN training {gan_seconds:.1f}s")
    result["png"] = plot(G, out, show, seed)
    print(f"time {time.perf_counter() - start:.1f}s")
    return result


def plot(G, out, show, seed):
    """A 10 x 10 grid of samples of G, saved to `out` (None without matplotlib)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(install matplotlib to draw the samples)")
        return None
    z = np.random.default_rng(seed + 7).standard_normal((100, G.input_shape[0]))
    images = G.predict(z.astype(np.float32))[..., 0]
    framed = np.pad(images, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)  # 1 px apart
    grid = framed.reshape(10, 10, 10, 10).transpose(0, 2, 1, 3).reshape(100, 100)
    if show:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(5, 5))
    else:
        from matplotlib.figure import Figure  # no pyplot: no window, no global backend
        fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1)
    ax.set_title("DCGAN samples (digits, 8 x 8)")
    ax.axis("off")
    if out:
        fig.savefig(out, dpi=100, bbox_inches="tight")
        print(f"wrote {out}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--upsampling", choices=["transpose", "nearest"], default="transpose")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="gan_digits.png", help="where the PNG goes")
    p.add_argument("--show", action="store_true", help="also open a window")
    args = p.parse_args()
    main(epochs=args.epochs, upsampling=args.upsampling, seed=args.seed, out=args.out,
         show=args.show)
