"""The training script: both loss terms, lazy R1, EMA, w_avg tracking, checkpoint and resume."""

import numpy as np
import torch

from studio.engine.loaders import load_model
from studio.train.gan import TrainConfig, Trainer, to_float


def test_steps_save_and_resume(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(generator=dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None),
                      batch=4, recon_weight=1.0, adv_weight=0.5, r1_interval=2, ema_kimg=0.01)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    z = torch.randn(4, 16)
    target = to_float(np.random.RandomState(0).randint(0, 255, (4, 16, 16, 3)).astype(np.uint8), t.device)
    w_avg0 = t.G.mapping.w_avg.clone()
    losses, seen = [], set()
    for _ in range(8):
        stats = t.train_step(z, target, target)
        losses.append(stats["l1"])
        seen |= set(stats)
    assert {"l1", "g_adv", "d", "r1"} <= seen  # r1 on every second step (lazy regularisation)
    assert losses[-1] < losses[0]  # reconstruction improves on a fixed batch
    assert not torch.equal(t.G.mapping.w_avg, w_avg0)  # w_avg is tracked
    ema_gap = sum((a - b).abs().sum() for a, b in zip(t.G_ema.parameters(), t.G.parameters(), strict=True))
    assert ema_gap > 0  # the EMA lags behind
    t.save()
    again = Trainer(cfg, tmp_path, torch.device("cpu"))
    assert again.step == 8 and again.images_seen == 32
    assert all(torch.equal(a, b) for a, b in zip(again.G.parameters(), t.G.parameters(), strict=True))
    exported = load_model(tmp_path / "generator_ema.safetensors")
    assert exported.config.resolution == 16 and exported.source_format == "ganstudio"
