"""A small character-level language model: an LSTM reads 24 characters and predicts the next,
trained on text that ships with Python (the Zen of Python and the docstrings of a few standard
modules), then writes a sample one character at a time.

    python examples/char_lm.py [--epochs 30]
"""

import argparse
import codecs
import contextlib
import io

import numpy as np

import dlfast
from dlfast.layers import LSTM, Dense, Input

WINDOW = 24


def corpus():
    with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the Zen
        import this
    import collections
    import functools
    import json
    zen = codecs.decode(this.s, "rot13")
    docs = [m.__doc__ for m in (json, functools, collections)]
    return "\n".join([zen] + [d for d in docs if d])


def windows(text, vocab):
    """Every WINDOW-character slice, one-hot (n, WINDOW, len(vocab)), and the next character."""
    codes = np.array([vocab[ch] for ch in text], np.int64)
    n = len(codes) - WINDOW
    idx = np.arange(WINDOW)[None, :] + np.arange(n)[:, None]
    x = np.eye(len(vocab), dtype=np.float32)[codes[idx]]
    return x, codes[WINDOW:]


def sample(model, seed, chars, vocab, length, temperature, rng):
    text = seed
    eye = np.eye(len(chars), dtype=np.float32)
    for _ in range(length):
        x = eye[[vocab[ch] for ch in text[-WINDOW:]]][None]
        p = model.predict(x)[0].astype(np.float64)
        logits = np.log(np.maximum(p, 1e-12)) / temperature
        p = np.exp(logits - logits.max())
        text += chars[rng.choice(len(chars), p=p / p.sum())]
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--length", type=int, default=200)
    args = parser.parse_args(argv)
    dlfast.manual_seed(0)
    text = corpus()
    chars = sorted(set(text))
    vocab = {ch: i for i, ch in enumerate(chars)}
    x, y = windows(text, vocab)
    print(f"corpus: {len(text):,} characters, {len(chars)} distinct, {len(x):,} windows")
    model = dlfast.Sequential([Input((WINDOW, len(chars))), LSTM(128),
                               Dense(len(chars), activation="softmax")])
    model.compile(optimizer=dlfast.optimizers.SGD(0.5, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0)
    losses = history.history["loss"]
    print(f"training loss {losses[0]:.3f} -> {losses[-1]:.3f} "
          f"(uniform guessing: {np.log(len(chars)):.3f}), "
          f"accuracy {100 * history.history['accuracy'][-1]:.1f}%")
    seed = text[:WINDOW]
    print("sample:")
    print(sample(model, seed, chars, vocab, args.length, 0.5, np.random.default_rng(0)))


if __name__ == "__main__":
    main()
