"""The command line and the examples: `python -m dlfast info | demo`, examples/*.py."""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd or ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_info_reports_the_kernel_path():
    info = json.loads(run("-m", "dlfast", "info"))
    assert info["cpu_isa"] in ("generic", "avx2", "avx512")
    assert info["num_threads"] >= 1
    assert info["cuda_available"] is False


def test_demo_trains_and_prints_the_table():
    out = run("-m", "dlfast", "demo", "--quick")
    rows = {m.group(1).strip(): (int(m.group(2).replace(",", "")), float(m.group(3)))
            for m in re.finditer(r"^(.+?)\s+([\d,]+)\s+\d+\s+[\d.]+s\s+([\d.]+)%$", out, re.M)}
    assert rows["iris 4-32-16-3 (Dense)"][0] == 739
    # --quick trains a fifth of the epochs: still far above chance (33% and 10%)
    assert rows["iris 4-32-16-3 (Dense)"][1] >= 80.0
    assert rows["digits 64-128-64-10 (Dense)"][1] >= 90.0
    assert rows["digits 8x8x1 CNN (Conv2D)"][1] >= 90.0
    assert rows["digits 8 steps x 8 px (LSTM)"] == (19_338, rows["digits 8 steps x 8 px (LSTM)"][1])
    assert rows["digits 8 steps x 8 px (LSTM)"][1] >= 80.0
    # the course's generative models (their quality bars at full length: test_examples_course)
    gan = re.search(r"^GAN \(DCGAN, digits, 4 epochs, [\d.]+s\): (\d+) of 10 classes among 1,000 "
                    r"samples, ([\d.]+)% classified with confidence > 0.9 \(judge: a digits CNN, "
                    r"([\d.]+)% test accuracy\)$", out, re.M)
    assert gan, out
    assert 0 <= int(gan.group(1)) <= 10 and 0 <= float(gan.group(2)) <= 100
    assert float(gan.group(3)) >= 90.0
    vae = re.search(r"^VAE / autoencoder \(digits, 8-D latent, 10 epochs, [\d.]+s\): test "
                    r"reconstruction MSE VAE ([\d.]+), autoencoder ([\d.]+), PCA ([\d.]+)$",
                    out, re.M)
    assert vae, out
    vae_mse, ae_mse, pca_mse = map(float, vae.groups())
    assert 0.015 < pca_mse < 0.035  # PCA with 8 components on digits scaled to [0, 1]
    assert 0 < vae_mse < 0.1 and 0 < ae_mse < 0.1


@pytest.mark.parametrize("script", ["iris_keras.py", "iris_by_hand.py", "cifar10_cnn.py",
                                    "digits_errors.py", "digits_lstm.py", "residual_cnn.py"])
def test_examples_reach_the_course_accuracy(script, tmp_path):
    out = run(os.path.join(ROOT, "examples", script), cwd=tmp_path)  # files they write go there
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert accuracy >= 90.0, out


def test_char_lm_learns_and_writes_a_sample(tmp_path):
    out = run(os.path.join(ROOT, "examples", "char_lm.py"), "--epochs", "10", "--length", "80",
              cwd=tmp_path)
    first, last, uniform = map(float, re.search(
        r"training loss ([\d.]+) -> ([\d.]+) \(uniform guessing: ([\d.]+)\)", out).groups())
    assert last < 0.75 * uniform and last < first, out
    sample = out.split("sample:\n", 1)[1]
    assert sample.startswith("The Zen of Python, by Ti") and len(sample.rstrip("\n")) >= 24 + 80


def test_optimizer_comparison_example(tmp_path):
    out = run(os.path.join(ROOT, "examples", "optimizer_comparison.py"), "--epochs", "8",
              "--out", str(tmp_path / "curves.png"), cwd=tmp_path)
    rows = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^(.+?)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)%\s+[\d.]+s", out, re.M)}
    assert sorted(rows) == sorted(["SGD", "SGD momentum 0.9", "Nesterov 0.9", "Adam", "Adamax",
                                   "Adadelta lr 1.0", "SGD-G2"]), out
    # from the same initial weights, momentum, Adam and SGD-G2 learn digits in 8 epochs,
    # and SGD-G2's adapted step beats plain SGD's fixed one
    for name in ("SGD momentum 0.9", "Adam", "SGD-G2"):
        assert rows[name][1] >= 90.0, out
    assert rows["SGD-G2"][0] < rows["SGD"][0], out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "install matplotlib" in out
    else:
        assert (tmp_path / "curves.png").stat().st_size > 1000
