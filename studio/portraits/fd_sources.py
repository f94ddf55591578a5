"""Where a generator's Frechet distance to renders comes from: its attribute mistakes, or its images' variance.

For n fresh z it compares G(z) with render(z) on the FD's pooled pixels:
  relabelled   render each z again with the oracle's labels of G(z) (one attribute, then all; skin tone read from
               the pixels): the FD those renders reach is what the model's attribute mistakes alone cost
  mean term    |mu_G - mu_renders|^2
  variance     G's variance over the renders', in total and on the renders' principal components
  shrunk       renders pulled toward their mean by a factor: the FD of an image set that varies too little
  pasted       per part of the render's own part map: G(z) with that part's pixels replaced by render(z)'s, and
               the FD it reaches (how much of the excess that part carries), with G's mean |error| inside the part

    python -m studio.portraits.fd_sources --model MODEL [--n 1000]

Figures are printed as multiples of the renders-vs-renders floor of evaluate.fidelity_report.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ..engine.network import Generator
from .evaluate import frechet_distance, pooled_pixels, reference_renders, sample, skin_tones
from .oracle import Oracle, predict
from .render import ATTRIBUTES, PARTS, Z_LAYOUT, render_dataset


def relabel_z(z: np.ndarray, labels: dict[str, np.ndarray], attributes: list[str]) -> np.ndarray:
    """A copy of z [n, z_dim] whose renders take `labels` for `attributes` and keep everything else.

    A categorical attribute swaps its argmax coordinate with the wanted class's, a binary one flips its coordinate's
    sign: both keep |z|, so the continuous parameters (read after z's 2nd-moment normalisation) do not move.  A label
    of -1 (not read) keeps that row's own value."""
    z = np.array(z, dtype=np.float64, copy=True)
    rows = np.arange(len(z))
    for name in attributes:
        s = Z_LAYOUT[name]
        want = np.asarray(labels[name]).astype(int)
        if s.stop - s.start > 1:
            own = np.argmax(z[:, s], axis=1)
            cur, tgt = s.start + own, s.start + np.where(want < 0, own, want)
            z[rows, cur], z[rows, tgt] = z[rows, tgt], z[rows, cur]  # fancy indexing reads copies: a swap
        else:
            own = (z[:, s.start] > 0).astype(int)
            z[(want >= 0) & (own != want), s.start] *= -1
    return z


def variance_ratios(feats: np.ndarray, reference: np.ndarray, bands: tuple[tuple[int, int], ...]) -> dict:
    """feats' variance over reference's: in total, and mean per principal component of reference in each band."""
    c_f, c_r = np.cov(feats, rowvar=False), np.cov(reference, rowvar=False)
    vals, vecs = np.linalg.eigh(c_r)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    on_pcs = np.einsum("ij,jk,ki->i", vecs.T, c_f, vecs)
    out = {"total": float(np.trace(c_f) / np.trace(c_r))}
    for lo, hi in bands:
        out[f"pcs_{lo}_{hi}"] = float(np.mean(on_pcs[lo:hi] / vals[lo:hi]))
    return out


def paste_part(gen: np.ndarray, renders: np.ndarray, part_maps: np.ndarray, part: int) -> np.ndarray:
    """gen [n, H, W, 3] with every pixel whose render part map [n, H, W] is `part` taken from renders."""
    return np.where((part_maps == part)[..., None], renders, gen)


def part_errors(gen: np.ndarray, renders: np.ndarray, part_maps: np.ndarray) -> dict[str, float]:
    """Mean |gen - renders| inside each part of the renders' part maps, in [-1, 1] units (the training L1's)."""
    err = np.abs(gen.astype(np.float64) - renders.astype(np.float64)).mean(-1) * (2 / 255)
    return {name: round(float(err[part_maps == i].mean()), 4) for i, name in enumerate(PARTS)
            if (part_maps == i).any()}


@torch.no_grad()
def fd_sources(G: Generator, oracle: Oracle, n: int = 1000, seed: int = 123) -> dict:
    """The figures of the module docstring for G at psi 1, as multiples of the renders' floor."""
    size = G.cfg.resolution
    reference, floor = reference_renders(n, G.cfg.z_dim, size)
    ref = pooled_pixels(reference)
    imgs, _ = sample(G, n, 1.0, seed=seed)
    z = np.random.RandomState(seed).randn(n, G.cfg.z_dim)
    render_imgs, part_maps, _ = render_dataset(z, size)
    gen, renders = pooled_pixels(imgs), pooled_pixels(render_imgs)
    labels = predict(oracle, imgs)
    labels["skin"] = skin_tones(imgs, labels["parts"])  # -1 (no skin found) keeps the render's own tone below

    def rel(x: np.ndarray) -> float:
        return round(frechet_distance(x, ref) / floor, 3)

    names = [*ATTRIBUTES, "skin"]
    relabelled = {name: rel(pooled_pixels(render_dataset(relabel_z(z, labels, [name]), size)[0])) for name in names}
    relabelled["all"] = rel(pooled_pixels(render_dataset(relabel_z(z, labels, names), size)[0]))
    mean = renders.mean(0)
    errors = part_errors(imgs, render_imgs, part_maps)  # one entry per part the renders hold
    return {"n": n, "floor": round(floor, 4), "generator": rel(gen), "renders_of_the_same_z": rel(renders),
            "relabelled": relabelled,
            "mean_term": round(float(((gen.mean(0) - ref.mean(0)) ** 2).sum() / floor), 3),
            "variance_over_renders": {k: round(v, 3) for k, v in
                                      variance_ratios(gen, renders, ((0, 20), (20, 100))).items()},
            "renders_shrunk": {str(s): rel(mean + s * (renders - mean)) for s in (0.9, 0.95)},
            "pasted": {name: rel(pooled_pixels(paste_part(imgs, render_imgs, part_maps, PARTS.index(name))))
                       for name in errors},
            "part_l1": errors}


def main(argv: list[str] | None = None) -> int:
    from .. import paths
    from ..engine.loaders import load_model
    from .oracle import load_oracle

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(paths.bundled_model() or ""))
    ap.add_argument("--oracle", default=str(paths.oracle()))
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    G = load_model(args.model).generator  # sampled at psi 1 only: its average latent is not read
    print(json.dumps(fd_sources(G, load_oracle(args.oracle), args.n), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
