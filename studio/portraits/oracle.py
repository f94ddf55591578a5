"""The part oracle: a small U-Net that labels a 64 px portrait with part masks and its attributes.

Trained on renderer output with augmentations that resemble generator output (blur, noise, colour jitter), so
that it can label generated images: which parts are where, and which hair colour, eye colour, mouth, ... they
show.  Used to measure the bundled model, to fit attribute directions, and to score detectors and edits.

    python -m studio.portraits.oracle --out models/oracle.safetensors --minutes 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .render import ATTRIBUTES, PARTS, label_arrays, render_dataset

ORACLE_FORMAT = "ganstudio-oracle"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Oracle(nn.Module):
    """U-Net (64 -> 8 px and back) with a part head and one classifier head per attribute (+ mouth openness)."""

    def __init__(self, width: int = 16):
        super().__init__()
        c = [width, width * 2, width * 3, width * 4]
        self.enc = nn.ModuleList([_block(3, c[0]), _block(c[0], c[1]), _block(c[1], c[2]), _block(c[2], c[3])])
        self.up = nn.ModuleList([nn.ConvTranspose2d(c[i + 1], c[i], 2, stride=2) for i in range(3)])
        self.dec = nn.ModuleList([_block(2 * c[i], c[i]) for i in range(3)])
        self.parts = nn.Conv2d(c[0], len(PARTS), 1)
        self.attrs = nn.ModuleDict({k: nn.Linear(c[3] + c[2], len(v)) for k, v in ATTRIBUTES.items()})
        self.openness = nn.Linear(c[3] + c[2], 1)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """x in [-1, 1], [N,3,64,64] -> part logits [N,P,64,64], attribute logits, mouth openness [N]."""
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        feats = torch.cat([x.mean(dim=[2, 3]), skips[2].amax(dim=[2, 3])], 1)
        for i in (2, 1, 0):
            x = self.dec[i](torch.cat([self.up[i](x), skips[i]], 1))
        return self.parts(x), {k: h(feats) for k, h in self.attrs.items()}, self.openness(feats)[:, 0]


@torch.no_grad()
def predict(oracle: Oracle, images_uint8: np.ndarray, batch: int = 256) -> dict:
    """Labels for uint8 images [N,64,64,3]: part map [N,64,64] and attribute class indices."""
    oracle.eval()
    parts, attrs, openness = [], {k: [] for k in ATTRIBUTES}, []
    for i in range(0, len(images_uint8), batch):
        x = torch.from_numpy(images_uint8[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        p, a, o = oracle(x)
        parts.append(p.argmax(1).numpy().astype(np.uint8))
        for k in ATTRIBUTES:
            attrs[k].append(a[k].argmax(1).numpy())
        openness.append(o.numpy())
    return {"parts": np.concatenate(parts), "openness": np.concatenate(openness),
            **{k: np.concatenate(v) for k, v in attrs.items()}}


def part_iou(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU per part over a whole set of label maps (parts absent from both are skipped)."""
    out = {}
    for k, name in enumerate(PARTS):
        inter = np.logical_and(pred == k, truth == k).sum()
        union = np.logical_or(pred == k, truth == k).sum()
        if union:
            out[name] = float(inter / union)
    return out


# ------------------------------------------------------------------------------------------------ training


def augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Blur, noise and colour jitter of the kind generated images show."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=gen) * 1.2
    k = torch.arange(-2, 3, dtype=torch.float32)
    kern = torch.exp(-(k[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    kern = kern / kern.sum(1, keepdim=True)
    x = x.reshape(1, n * 3, 64, 64)
    kx = kern.repeat_interleave(3, 0)[:, None, None, :]
    ky = kern.repeat_interleave(3, 0)[:, None, :, None]
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), kx, groups=n * 3)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), ky, groups=n * 3).reshape(n, 3, 64, 64)
    x = x * (1 + 0.1 * torch.randn(n, 3, 1, 1, generator=gen)) + 0.08 * torch.randn(n, 3, 1, 1, generator=gen)
    x = x + 0.04 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    zs = np.random.RandomState(seed).randn(n, 64)
    imgs, labs, params = render_dataset(zs)
    labels = label_arrays(params)
    labels["openness"] = np.array([p.openness if p.mouth == 2 else 0.0 for p in params], np.float32)
    return imgs, labs, labels


def evaluate(oracle: Oracle, imgs: np.ndarray, labs: np.ndarray, labels: dict) -> dict:
    pred = predict(oracle, imgs)
    ious = part_iou(pred["parts"], labs)
    acc = {k: float((pred[k] == labels[k]).mean()) for k in ATTRIBUTES}
    return {"miou": float(np.mean(list(ious.values()))), "iou": ious, "accuracy": acc,
            "min_accuracy": min(acc.values())}


def save_oracle(oracle: Oracle, path: Path, metrics: dict) -> None:
    from safetensors.torch import save

    from ..engine.files import write_atomic

    state = {k: v.detach().cpu().contiguous() for k, v in oracle.state_dict().items()}
    write_atomic(path, save(state, metadata={"format": ORACLE_FORMAT, "metrics": json.dumps(metrics)}))


def load_oracle(path: str | Path) -> Oracle:
    from safetensors.torch import load_file

    oracle = Oracle()
    oracle.load_state_dict(load_file(str(path)))
    return oracle.eval()


def train(out: Path, minutes: float, n_train: int, threads: int, seed: int = 7, resume: str | None = None,
          lr: float = 2e-3) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    imgs, labs, labels = make_data(n_train, seed=1000 + seed)
    held = make_data(1000, seed=2002)  # held-out renders, never trained on
    print(f"rendered {n_train} + 1000 portraits in {time.time() - t0:.0f}s", flush=True)
    oracle = load_oracle(resume).train() if resume else Oracle()
    opt = torch.optim.AdamW(oracle.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(labs).long()
    a_all = {k: torch.from_numpy(v) for k, v in labels.items()}
    freq = np.bincount(labs.ravel(), minlength=len(PARTS)) / labs.size
    part_weight = torch.tensor(1 / np.sqrt(np.maximum(freq, 1e-4)), dtype=torch.float32)
    part_weight = part_weight / part_weight.mean()  # small parts (mouth, cheeks, eyes) count more
    t_end, step, batch = time.time() + minutes * 60, 0, 64
    total_steps = None
    while time.time() < t_end:
        oracle.train()
        idx = torch.randint(0, n_train, (batch,), generator=gen)
        x = augment(x_all[idx].float() / 127.5 - 1, gen)
        parts, attrs, openness = oracle(x)
        loss = F.cross_entropy(parts, y_all[idx], weight=part_weight)
        loss = loss + sum(F.cross_entropy(attrs[k], a_all[k][idx].long()) for k in ATTRIBUTES) / 4
        loss = loss + F.mse_loss(openness, a_all["openness"][idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if total_steps is None and step == 20:  # estimate the run's length, then decay the lr over it
            total_steps = int(20 * minutes * 60 / (time.time() - (t_end - minutes * 60)))
        if total_steps:
            for g in opt.param_groups:
                g["lr"] = lr * max(0.05, 0.5 * (1 + np.cos(np.pi * min(step / total_steps, 1))))
        if step % 200 == 0:
            print(json.dumps({"step": step, "loss": round(loss.item(), 4)}), flush=True)
    metrics = evaluate(oracle, *held)
    metrics["steps"] = step
    metrics["train_images"] = n_train
    save_oracle(oracle, out, metrics)
    print(json.dumps(metrics, indent=1), flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/oracle.safetensors")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--train-size", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", help="continue from this oracle file")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=7, help="training data seed offset and sampling seed")
    args = ap.parse_args(argv)
    train(Path(args.out), args.minutes, args.train_size, args.threads, args.seed, args.resume, args.lr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
