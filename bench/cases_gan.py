"""The GAN step of examples/gan_digits.py (dlfast.generative's DCGAN on 8x8 digits): D on a
batch of real and a batch of fake images, then G through the frozen D, against the same step
in PyTorch (the same layers, weights copied across, Adam, binary cross-entropy; D's
parameters excluded from autograd during G's step, the fastest PyTorch form). Checked first
with Dropout off and SGD on both sides: the two libraries' losses and weight updates agree."""

import numpy as np

import dlfast
from dlfast import generative

from harness import Case, expect_close, torch

RNG = np.random.default_rng(77)


def dlfast_gan(dropout):
    dlfast.manual_seed(3)
    G, D = generative.dcgan_generator(), generative.dcgan_discriminator(dropout)
    gan = generative.compile_gan(G, D)
    return G, D, gan


def torch_gan(G, D, dropout):
    """PyTorch twins of G and D with their weights: NCHW inside, Keras's NHWC at the ends
    (Reshape and Flatten in (h, w, c) order); TF 'same' for the stride-2 3x3 convolutions pads
    bottom/right only (total 1), which F.pad reproduces."""
    nn, F = torch.nn, torch.nn.functional
    gw, dw = G.get_weights(), D.get_weights()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))

    class Gen(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(gw[0].shape[0], 4 * 4 * 64)
            self.up = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
            self.out = nn.Conv2d(32, 1, 3, padding=1)

        def forward(self, z):
            h = F.leaky_relu(self.fc(z), 0.2).view(-1, 4, 4, 64).permute(0, 3, 1, 2)
            h = F.leaky_relu(self.up(h), 0.2)
            return torch.tanh(self.out(h))

    class Disc(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 32, 3, stride=2), nn.Conv2d(32, 64, 3, stride=2)
            self.fc = nn.Linear(2 * 2 * 64, 1)

        def forward(self, x):
            h = F.dropout(F.leaky_relu(self.c1(F.pad(x, (0, 1, 0, 1))), 0.2), dropout,
                          self.training)
            h = F.dropout(F.leaky_relu(self.c2(F.pad(h, (0, 1, 0, 1))), 0.2), dropout,
                          self.training)
            return torch.sigmoid(self.fc(h.permute(0, 2, 3, 1).flatten(1)))

    g, d = Gen(), Disc()
    with torch.no_grad():
        g.fc.weight.copy_(t(gw[0].T)); g.fc.bias.copy_(t(gw[1]))
        g.up.weight.copy_(t(gw[2]).permute(3, 2, 0, 1)); g.up.bias.copy_(t(gw[3]))
        g.out.weight.copy_(t(gw[4]).permute(3, 2, 0, 1)); g.out.bias.copy_(t(gw[5]))
        d.c1.weight.copy_(t(dw[0]).permute(3, 2, 0, 1)); d.c1.bias.copy_(t(dw[1]))
        d.c2.weight.copy_(t(dw[2]).permute(3, 2, 0, 1)); d.c2.bias.copy_(t(dw[3]))
        d.fc.weight.copy_(t(dw[4].T)); d.fc.bias.copy_(t(dw[5]))
    return g, d


def torch_step_fn(g, d, sgd_lr=None):
    """The step with the example's Adam, or plain SGD at sgd_lr (the check: Adam's first steps
    are lr * sign(g), which a rounding-level difference flips where g is near 0)."""
    if sgd_lr is None:
        opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-7)
        opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-7)
    else:
        opt_g = torch.optim.SGD(g.parameters(), lr=sgd_lr)
        opt_d = torch.optim.SGD(d.parameters(), lr=sgd_lr)
    bce = torch.nn.functional.binary_cross_entropy

    def step(real, z_fake, z_gen):
        n = real.shape[0]
        with torch.no_grad():
            fake = g(z_fake)
        opt_d.zero_grad()
        d_loss = bce(d(torch.cat([real, fake])),
                     torch.cat([torch.ones(n, 1), torch.zeros(len(fake), 1)]))
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        opt_g.zero_grad()
        g_loss = bce(d(g(z_gen)), torch.ones(len(z_gen), 1))
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
        return d_loss.item(), g_loss.item()
    return step


def gan_step_case(batch=64):
    x_tr = generative.digits_images()[0]
    real = x_tr[:batch]
    z = RNG.standard_normal((2 * batch, generative.LATENT_DIM)).astype(np.float32)
    G, D, gan = dlfast_gan(0.3)
    impls = {"dlfast": lambda: generative.gan_step(G, D, gan, real, z[:batch], z[batch:])}
    if torch is not None:
        g, d = torch_gan(G, D, 0.3)
        tstep = torch_step_fn(g, d)
        t_real = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
        tz = torch.from_numpy(z)
        impls["torch"] = lambda: tstep(t_real, tz[:batch], tz[batch:])

    def check():
        if torch is None:
            return "not checked (no torch)"
        G0, D0, gan0 = dlfast_gan(0.0)
        g0, d0 = torch_gan(G0, D0, 0.0)
        w0 = G0.get_weights() + D0.get_weights()
        D0.compile(optimizer=dlfast.optimizers.SGD(0.1), loss="binary_crossentropy")
        gan0.compile(optimizer=dlfast.optimizers.SGD(0.1), loss="binary_crossentropy")
        step0 = torch_step_fn(g0, d0, sgd_lr=0.1)
        t_real = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
        pairs = []
        for k in range(2):
            ours = generative.gan_step(G0, D0, gan0, real, z[:batch], z[batch:])
            theirs = step0(t_real, torch.from_numpy(z[:batch]), torch.from_numpy(z[batch:]))
            pairs += [(f"step {k} D loss", ours[0], theirs[0]),
                      (f"step {k} G loss", ours[1], theirs[1])]
        tw = [p.detach().numpy() for p in list(g0.parameters()) + list(d0.parameters())]
        ow = G0.get_weights() + D0.get_weights()
        layout = lambda a: a.T if a.ndim == 2 else a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
        pairs += [(f"update of weight {i} after 2 steps", o - w, layout(t) - w)
                  for i, (o, t, w) in enumerate(zip(ow, tw, w0))]
        return f"2 SGD steps vs PyTorch (dropout off): losses, updates rel err " \
               f"{expect_close('dlfast', pairs, 2e-3):.1e}"

    return Case("gan", f"dcgan digits step (D real+fake, G through frozen D) b{batch}",
                impls, check)


def gan_cases():
    return [gan_step_case()]
