"""The course examples that reproduce a slide or an exercise: each example's main(...) on a
fixed seed, with settings small enough for the test run, against what the course (or a
formula written here) says it should give."""

import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def load_example(name):
    """examples/<name>.py as a module (the examples are scripts, not a package)."""
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"course_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_png(result, path):
    if HAVE_MATPLOTLIB:
        assert result["png"] == str(path)
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC
        assert path.stat().st_size > 5000
    else:
        assert result["png"] is None and not path.exists()


# --- function approximation --------------------------------------------------------------------

def test_function_approximation_improves_with_width(tmp_path, capsys):
    fa = load_example("function_approximation")
    out = tmp_path / "fit.png"
    r = fa.main(out=str(out))  # the default run: 18 small fits, ~3 s
    mse = r["mse"]
    printed = capsys.readouterr().out
    assert "sin relu: 4 units test MSE" in printed and "step tanh:" in printed
    # a ReLU net is piecewise linear with at most `units` kinks: its error on sin falls with
    # the width (measured 3.6e-3, 2.0e-4, 4.7e-5)
    assert mse["sin", "relu", 4] > mse["sin", "relu", 16] > mse["sin", "relu", 64]
    assert mse["sin", "relu", 64] < 1e-3
    # tanh bumps fit sin closely from 4 units on (7.8e-5 .. 2.1e-4), and |x|'s corner better
    # as they grow (9.1e-3, 2.3e-3, 7.0e-4)
    assert max(mse["sin", "tanh", u] for u in (4, 16, 64)) < 1e-3
    assert mse["|x|", "tanh", 4] > mse["|x|", "tanh", 16] > mse["|x|", "tanh", 64]
    # |x| = relu(x) + relu(-x): exact up to training (measured 7e-8 at 64 units)
    assert mse["|x|", "relu", 64] < 1e-4
    # a step cannot be followed exactly by a continuous net, but closely: a constant fit
    # scores 0.25 and the best straight line about 0.06; measured 3.9e-3 and 4.5e-3
    for activation in ("relu", "tanh"):
        assert mse["step", activation, 64] < 1e-2
    check_png(r, out)


# --- SGD convergence ---------------------------------------------------------------------------

@pytest.mark.parametrize("h, a, b, steps, seed", [(0.1, 0.0, 1.0, 1000, 0),
                                                  (0.5, -1.0, 3.0, 200, 7)])
def test_sgd_variance_matches_the_closed_form(tmp_path, h, a, b, steps, seed):
    sc = load_example("sgd_convergence")
    out = tmp_path / "sgd.png"
    runs = 2000
    r = sc.main(runs=runs, steps=steps, h=h, a=a, b=b, w0=2.0, seed=seed, out=str(out))
    var_x = (b - a) ** 2 / 12  # the variance of U(a, b)
    # constant step: w_{t+1} = (1-h) w_t + h X_t is stationary with Var = h Var(X) / (2 - h)
    # (after `steps` steps the transient (1-h)^(2 steps) is below 1e-40)
    stationary = h * var_x / (2 - h)
    assert r["closed_constant"] == pytest.approx(stationary, rel=1e-12)
    assert abs(r["var_constant"] - stationary) < 4 * r["se_constant"]
    assert r["se_constant"] < 0.05 * stationary   # a real measurement, not a wide net
    # step 1/(t+1): w_t is the mean of t samples, Var = Var(X) / t
    assert abs(r["var_decay"] - var_x / steps) < 4 * r["se_decay"]
    assert r["var_decay"] < stationary / 10
    # both means converge to the minimum E[X]
    m = (a + b) / 2
    assert abs(r["mean_constant"] - m) < 4 * np.sqrt(stationary / runs)
    assert abs(r["mean_decay"] - m) < 4 * np.sqrt(var_x / steps / runs)
    # the variance curve of the 1/t step follows Var(X)/t all along (relative s.e. of a
    # variance from 2000 runs: about sqrt(2/2000) = 3%)
    for t in (1, 10, steps // 2):
        assert r["var_curve_decay"][t - 1] == pytest.approx(var_x / t, rel=4 * np.sqrt(2 / runs))
    # dlfast's SGD.apply did exactly the recursion written in NumPy
    assert r["numpy_gap"] < 1e-12
    check_png(r, out)


# --- autoencoder and VAE -----------------------------------------------------------------------

def test_autoencoder_beats_pca_and_the_vae_learns(tmp_path, capsys):
    av = load_example("autoencoder_vae")
    out = tmp_path / "vae.png"
    r = av.main(latents=(2, 8), epochs=30, vae_epochs=10, seed=0, out=str(out))
    printed = capsys.readouterr().out
    assert "latent 8: PCA test MSE" in printed
    # PCA is the best LINEAR 8-D code; the nonlinear autoencoder does better (measured
    # 0.0161 against 0.0246 after 30 epochs; 0.0123 after the default 150)
    assert r["ae_mse"][8] < 0.8 * r["pca_mse"][8]
    assert r["ae_mse"][2] < r["pca_mse"][2]
    # PCA's error is the variance its components leave out: check it independently
    x_train, _, x_test, _ = __import__("dlfast").datasets.load_digits_split()
    centred = x_train - x_train.mean(axis=0)
    basis = np.linalg.svd(centred, full_matrices=False)[2][:8]
    projected = (x_test - x_train.mean(axis=0)) @ basis.T @ basis + x_train.mean(axis=0)
    assert r["pca_mse"][8] == pytest.approx(np.mean((projected - x_test) ** 2), rel=1e-4)
    for latent in (2, 8):
        history = r["vae_history"][latent]
        assert len(history) == 10 and all(np.isfinite(history))
        assert history[-1] < 0.75 * history[0]         # measured 38.9 -> 25.7
        assert np.mean(history[-3:]) < np.mean(history[:3])
        assert r["vae_mse"][latent] < 0.07               # a constant image scores ~0.11
    check_png(r, out)


def test_vae_kl_gradient_against_finite_differences():
    av = load_example("autoencoder_vae")
    rng = np.random.default_rng(3)
    mu, log_var = rng.normal(size=(5, 3)), rng.normal(scale=0.7, size=(5, 3))

    def kl_reference(mu, log_var):
        # KL(N(mu, s^2) || N(0, 1)) = -log s + (s^2 + mu^2) / 2 - 1/2 per coordinate,
        # summed over coordinates, averaged over the rows
        s = np.exp(0.5 * log_var)
        return np.sum(-np.log(s) + (s * s + mu * mu) / 2 - 0.5) / mu.shape[0]

    kl, dmu, dlog_var = av.kl_divergence(mu, log_var)
    assert kl == pytest.approx(kl_reference(mu, log_var), rel=1e-12)
    for analytic, which in ((dmu, 0), (dlog_var, 1)):
        numeric = np.zeros_like(analytic)
        for idx in np.ndindex(analytic.shape):
            args = [mu.copy(), log_var.copy()]
            args[which][idx] += 1e-6
            plus = kl_reference(*args)
            args[which][idx] -= 2e-6
            numeric[idx] = (plus - kl_reference(*args)) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_vae_hand_written_backward_against_finite_differences():
    """Every weight gradient of the VAE's loss (BCE-sum + KL, through the reparametrisation)
    at a fixed noise, against central differences in float64."""
    av = load_example("autoencoder_vae")
    import dlfast
    dlfast.manual_seed(1)
    rng = np.random.default_rng(1)
    vae = av.VAE(latent=3, hidden=6, dtype="float64")
    for w in vae.weights:  # non-zero biases, so no unit sits at relu's kink by construction
        w += rng.normal(scale=0.1, size=w.shape)
    x = rng.uniform(size=(4, 64))
    eps = rng.standard_normal((4, 3))
    loss, reconstruction, kl = vae.loss_and_grads(x, eps)
    assert loss == pytest.approx(reconstruction + kl) and kl > 0
    analytic = [g.copy() for g in vae.grads]
    worst = 0.0
    for w, g in zip(vae.weights, analytic):
        numeric = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + 1e-6
            plus = vae.loss_and_grads(x, eps)[0]
            w[idx] = keep - 1e-6
            minus = vae.loss_and_grads(x, eps)[0]
            w[idx] = keep
            numeric[idx] = (plus - minus) / 2e-6
        worst = max(worst, np.max(np.abs(g - numeric)) / (np.max(np.abs(numeric)) + 1e-12))
    assert worst < 1e-6


# --- Inception and VGG -------------------------------------------------------------------------

def test_inception_and_vgg_learn_digits_and_the_big_summaries_match_keras(tmp_path, capsys):
    iv = load_example("inception_vgg")
    out = tmp_path / "acc.png"
    r = iv.main(epochs=5, seed=0, out=str(out))
    printed = capsys.readouterr().out
    # keras.applications.VGG16(include_top=True) has 138,357,544 parameters; the course's
    # AlexNet layer list 62,378,344 (the course's slides; by hand: 34,944 + 614,656 + 885,120 +
    # 1,327,488 + 884,992 convolution and 37,752,832 + 16,781,312 + 4,097,000 Dense)
    assert r["vgg16_params"] == 138_357_544
    assert r["alexnet_params"] == 62_378_344
    assert "Total params: 138,357,544" in printed and "Total params: 62,378,344" in printed
    assert "(None, 7, 7, 512)" in printed and "(None, 6, 6, 256)" in printed
    # parameters counted by hand. VGG-style: convs 3*3*1*16+16, 3*3*16*16+16, 3*3*16*32+32,
    # 3*3*32*32+32; Dense 2*2*32*64+64, 64*10+10
    assert r["vgg_style_params"] == 160 + 2320 + 4640 + 9248 + 8256 + 650
    # Inception: stem 3*3*1*16+16; branches on 16 channels: 1x1 16*8+8; 1x1 16*8+8 then 3x3
    # 3*3*8*16+16; 1x1 16*4+4 then 5x5 5*5*4*8+8; pool then 1x1 16*8+8; concatenated to
    # 8+16+8+8 = 40 channels, pooled to 4x4: Dense 4*4*40*10+10
    assert r["inception_params"] == 160 + 136 + 136 + 1168 + 68 + 808 + 136 + 6410
    assert r["vgg_style_accuracy"] >= 0.9
    assert r["inception_accuracy"] >= 0.9
    check_png(r, out)


def test_gan_digits_covers_the_classes_without_mode_collapse(tmp_path):
    """The DCGAN trained with the Keras 3 recipe (D.trainable flipped every step) on a fixed
    seed: the judge CNN reaches 97%, and among 1,000 samples it labels with confidence > 0.9
    at least 8 of the 10 digits appear (the issue's bar against mode collapse), making up at
    least half of the samples. A G that never trained (D frozen in its own steps, or G's
    updates lost) draws noise the judge is not confident about."""
    gan = load_example("gan_digits")
    result = gan.main(epochs=40, seed=0, out=str(tmp_path / "gan.png"))
    assert result["judge_accuracy"] >= 0.97
    assert result["classes_present"] >= 8, result
    assert result["confident_share"] >= 0.5, result
    check_png(result, tmp_path / "gan.png")


def test_an_untrained_generator_fails_the_gan_quality_bar():
    """The quality measure can fail: the same judge on an untrained generator."""
    from dlfast import generative
    judge, _ = generative.trained_digits_classifier(epochs=15, seed=0)
    q = generative.gan_quality(generative.dcgan_generator(), judge)
    assert q["confident_share"] < 0.5 or q["classes_present"] < 8, q
