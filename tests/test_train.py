"""The training script: both loss terms, lazy R1, EMA, w_avg tracking, checkpoint and resume."""

import numpy as np
import pytest
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

    # a new run can start from that generator's weights, with its own step count and optimisers
    fresh = Trainer(cfg, tmp_path / "next", torch.device("cpu"))
    fresh.init_from(tmp_path / "generator_ema.safetensors")
    assert fresh.step == 0 and fresh.images_seen == 0
    assert all(torch.equal(a, b) for a, b in zip(fresh.G.parameters(), t.G_ema.parameters(), strict=True))
    other = TrainConfig(generator={**cfg.generator, "w_dim": 32})
    with pytest.raises(SystemExit, match="different architecture"):
        Trainer(other, tmp_path / "other", torch.device("cpu")).init_from(tmp_path / "generator_ema.safetensors")


def test_z_probe_learns_from_w_and_resumes(tmp_path):
    from studio.train.gan import probe_target

    torch.manual_seed(0)
    cfg = TrainConfig(generator=dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None), batch=8, probe_weight=1.0,
                      lr=0.01)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    z = torch.randn(8, 16)
    target = to_float(np.random.RandomState(0).randint(0, 255, (8, 16, 16, 3)).astype(np.uint8), t.device)
    mapping0 = [p.clone() for p in t.G.mapping.parameters()]
    probes = [t.train_step(z, target, target)["probe"] for _ in range(30)]
    assert probes[-1] < 0.5 * probes[0]  # w keeps z recoverable: the probe and the mapping both learn
    # the probe's loss is the MSE against the renderer's (normalised) z coordinates
    with torch.no_grad():
        mse = (t.probe(t.G.mapping(z)) - probe_target(z)).square().mean().item()
    assert abs(probe_target(z).square().mean().item() - 1) < 1e-4 and mse < probes[0]
    assert any(not torch.equal(a, b) for a, b in zip(mapping0, t.G.mapping.parameters(), strict=True))
    t.save()
    again = Trainer(cfg, tmp_path, torch.device("cpu"))
    assert torch.equal(again.probe.weight, t.probe.weight)
    # without probe_weight the probe takes no part
    plain = Trainer(TrainConfig(generator=cfg.generator, batch=8), tmp_path / "plain", torch.device("cpu"))
    assert "probe" not in plain.train_step(z, target, target)


def test_linear_w_term_makes_w_a_more_linear_function_of_z_and_resumes(tmp_path):
    from studio.engine.network import normalize_2nd_moment

    torch.manual_seed(0)
    cfg = TrainConfig(generator=dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=4, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None), batch=32,
                      linear_w_weight=1.0, recon_weight=0.0, lr=0.01)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))

    @torch.no_grad()
    def unexplained(seed: int) -> float:  # 1 - R^2 of the least-squares fit of w from z on fresh z
        z = torch.randn(4096, 16, generator=torch.Generator().manual_seed(seed))
        w = t.G.mapping(z)
        x = torch.cat([normalize_2nd_moment(z), torch.ones(len(z), 1)], 1)
        return float((x @ torch.linalg.lstsq(x, w).solution - w).square().sum() / (w - w.mean(0)).square().sum())

    start = t.fit_linear(n=4096)
    assert abs(start - unexplained(0)) < 1e-4 and start > 0.02  # four leaky-ReLU layers: not linear to begin with
    target = torch.zeros(32, 3, 16, 16)
    stats = [t.train_step(torch.randn(32, 16), target, target)["lin"] for _ in range(60)]
    assert unexplained(1) < 0.5 * start and stats[-1] < stats[0]
    t.save()
    again = Trainer(cfg, tmp_path, torch.device("cpu"))
    assert torch.equal(again.linear.weight, t.linear.weight)
    plain = Trainer(TrainConfig(generator=cfg.generator, batch=8), tmp_path / "plain", torch.device("cpu"))
    assert "lin" not in plain.train_step(torch.randn(8, 16), target[:8], target[:8])


def test_param_probe_reads_what_the_renderer_draws_and_starts_fitted(tmp_path):
    from studio.engine.network import normalize_2nd_moment
    from studio.portraits.render import Z_KINDS, Z_USED, params_from_z
    from studio.train.gan import param_target

    z = torch.randn(200, 64, generator=torch.Generator().manual_seed(3))
    y = param_target(z)
    assert y.shape == (200, Z_USED) and Z_USED <= 64  # one drawn value per coordinate read
    col = 0
    for name, kind in Z_KINDS.items():  # column by column, what params_from_z reads from the same z
        drawn = np.array([getattr(params_from_z(row), name) for row in normalize_2nd_moment(z).numpy()])
        part = y[:, col:col + max(kind, 1)].numpy()
        if kind >= 2:
            assert np.array_equal(part.argmax(1), drawn) and np.array_equal(part.sum(1), np.ones(200)), name
        elif kind == 1:
            assert np.array_equal(part[:, 0], drawn.astype(np.float32)), name
        else:  # params_from_z scales Phi to the parameter's range: the target is Phi itself, in [0, 1]
            lo, hi = drawn.min(), drawn.max()
            assert 0 <= part.min() and part.max() <= 1 and np.corrcoef(part[:, 0], drawn)[0, 1] > 0.9999, name
            assert lo < hi
        col += max(kind, 1)
    assert col == Z_USED

    torch.manual_seed(0)
    cfg = TrainConfig(generator=dict(z_dim=64, w_dim=32, resolution=16, mapping_layers=2, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None), batch=8, probe_weight=1.0,
                      probe_target="params")
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    assert t.probe.out_features == Z_USED
    zs = torch.randn(512, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        before = (t.probe(t.G.mapping(zs)) - param_target(zs)).square().mean().item()
    fitted = t.fit_probe(n=2048)  # least squares on fresh z: better than the random head, on other z too
    with torch.no_grad():
        after = (t.probe(t.G.mapping(zs)) - param_target(zs)).square().mean().item()
    assert after < 0.5 * before and abs(after - fitted) < 0.5 * fitted
    target = to_float(np.random.RandomState(0).randint(0, 255, (8, 16, 16, 3)).astype(np.uint8), t.device)
    assert "probe" in t.train_step(zs[:8], target, target)


def test_mapping_lr_scale_gives_the_mapping_its_own_rate_and_resumes(tmp_path):
    cfg = TrainConfig(generator=dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None), batch=4, lr=0.001,
                      mapping_lr_scale=10.0, lr_decay_kimg=1.0)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    mapping = {id(p) for p in t.G.mapping.parameters()}
    assert sum(len(g["params"]) for g in t.opt_g.param_groups) == len(list(t.G.parameters()))
    z = torch.randn(4, 16)
    target = to_float(np.random.RandomState(0).randint(0, 255, (4, 16, 16, 3)).astype(np.uint8), t.device)
    for _ in range(3):
        t.train_step(z, target, target)
    rates = {all(id(p) in mapping for p in g["params"]): g["lr"] for g in t.opt_g.param_groups}
    assert rates[True] == pytest.approx(10 * rates[False]) and rates[False] == pytest.approx(t._lr(), rel=1e-3)
    assert rates[False] < 0.001  # the decay applies to both
    t.save()
    again = Trainer(cfg, tmp_path, torch.device("cpu"))
    again.train_step(z, target, target)
    assert [g["lr"] for g in again.opt_g.param_groups] == pytest.approx([again._lr(), 10 * again._lr()], rel=1e-3)
    plain = Trainer(TrainConfig(generator=cfg.generator, batch=4), tmp_path / "plain", torch.device("cpu"))
    assert len(plain.opt_g.param_groups) == 1  # checkpoints made without it keep resuming


def test_part_weights_weight_the_reconstruction(tmp_path):
    from studio.portraits.render import PART_INDEX
    from studio.train.gan import part_weight_table

    table = part_weight_table({"left_eye": 8.0, "cheeks": 4.0})
    assert table[PART_INDEX["left_eye"]] == 8 and table[PART_INDEX["cheeks"]] == 4 and table[PART_INDEX["skin"]] == 1
    cfg = TrainConfig(generator=dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0,
                                     channel_base=256, channel_max=32, conv_clamp=None), batch=2)
    z = torch.randn(2, 16)
    target = to_float(np.random.RandomState(1).randint(0, 255, (2, 16, 16, 3)).astype(np.uint8), torch.device("cpu"))

    def first_l1(name, weights):
        torch.manual_seed(0)
        t = Trainer(cfg, tmp_path / name, torch.device("cpu"))
        with torch.no_grad():
            fake = t.G.synthesis(t.G.mapping(z).unsqueeze(1).repeat(1, t.G.cfg.num_ws, 1))
        return t.train_step(z, target, target, weights)["l1"], (fake - target).abs()

    plain, err = first_l1("a", None)
    ones, _ = first_l1("b", torch.ones(2, 1, 16, 16))
    assert abs(plain - ones) < 1e-6
    spot = torch.zeros(2, 1, 16, 16)
    spot[:, :, 3:5, 6:9] = 8.0  # only these pixels count
    weighted, _ = first_l1("c", spot)
    assert abs(weighted - err[:, :, 3:5, 6:9].mean().item()) < 1e-5


def test_region_prior_weighs_where_a_part_can_be_whether_or_not_the_image_has_it():
    from studio.portraits.render import PART_INDEX
    from studio.train.gan import part_region_prior, part_weight_table, pixel_weights, region_weight_map

    cheeks, skin = PART_INDEX["cheeks"], PART_INDEX["skin"]
    parts = np.full((4, 8, 8), skin, np.uint8)
    parts[0, 2:4, 1:3] = cheeks  # half of the images have blush, at slightly different places
    parts[1, 2:4, 2:4] = cheeks
    prior = part_region_prior(parts)
    assert prior[cheeks].max() == 1 and prior[cheeks][2, 2] == 1 and prior[cheeks][2, 1] == 0.5
    assert prior[cheeks][6, 6] == 0 and prior[skin].max() == 1
    table = part_weight_table({"cheeks": 5.0})
    region = region_weight_map(prior, table)
    assert region[2, 2] == 5 and region[2, 1] == 3 and region[6, 6] == 1
    w = pixel_weights(torch.from_numpy(parts), torch.from_numpy(table), torch.from_numpy(region))
    assert w.shape == (4, 1, 8, 8)
    # an image without blush weighs the cheek region like one with it; its own blush pixels keep their weight
    assert w[3, 0, 2, 2] == w[0, 0, 2, 2] == 5 and w[0, 0, 2, 1] == 5 and w[3, 0, 2, 1] == 3
    assert torch.equal(pixel_weights(torch.from_numpy(parts), torch.from_numpy(table), None)[3, 0],
                       torch.ones(8, 8))


def test_part_weight_option_names_a_part(capsys):
    from studio.train.gan import main

    with pytest.raises(SystemExit) as e:
        main(["--part-weight", "nose=3", "--out", "/nonexistent/never-made"])
    assert e.value.code == 2 and "unknown part 'nose'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--part-weight", "cheeks=lots", "--out", "/nonexistent/never-made"])
    assert e.value.code == 2 and "not PART=NUMBER" in capsys.readouterr().err


def test_the_detail_discriminator_sees_no_colour_and_the_synthesis_only_term_spares_the_mapping(tmp_path):
    from studio.train.gan import high_pass

    flat = torch.full((2, 3, 16, 16), 0.3)
    assert float(high_pass(flat).abs().max()) < 1e-6  # a flat colour has no detail
    edge = flat.clone()
    edge[:, :, :, 8:] = -0.5
    assert float(high_pass(edge).abs().max()) > 0.1
    torch.manual_seed(0)
    gen = dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0, channel_base=256,
               channel_max=32, conv_clamp=None)
    cfg = TrainConfig(generator=gen, batch=4, recon_weight=0.0, adv_weight=1.0, adv_highpass=True,
                      adv_synthesis_only=True, r1_interval=2)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    mapping0 = [p.clone() for p in t.G.mapping.parameters()]
    synthesis0 = [p.clone() for p in t.G.synthesis.parameters()]
    reals = to_float(np.random.RandomState(0).randint(0, 255, (4, 16, 16, 3)).astype(np.uint8), t.device)
    t.train_step(torch.randn(4, 16), reals, reals)
    assert all(torch.equal(a, b) for a, b in zip(t.G.mapping.parameters(), mapping0, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(t.G.synthesis.parameters(), synthesis0, strict=True))


def test_fidelity_measures():
    from studio.portraits.evaluate import frechet_distance, mean_abs_laplacian, pooled_pixels

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert abs(frechet_distance(a, a)) < 1e-6
    shifted = a + np.array([1.0, 0.0, 2.0])
    assert abs(frechet_distance(a, shifted) - 5.0) < 1e-6  # |d mu|^2, the same covariance
    scaled = a * 2  # N(0, I) vs N(0, 4I): tr(I + 4I - 2 * 2I) = 3 per set of 3 dims
    assert abs(frechet_distance(a, scaled) - 3.0) < 0.1
    img = np.zeros((1, 64, 64, 3), np.uint8)
    img[:, :, 32:] = 255
    assert pooled_pixels(img).shape == (1, 16 * 16 * 3) and pooled_pixels(img).max() == 1.0
    assert mean_abs_laplacian(img) > mean_abs_laplacian(np.full_like(img, 128)) == 0.0


def test_the_paired_discriminator_judges_each_reconstruction_on_its_own_target(tmp_path):
    """adv_paired: D sees the image's detail beside its target's blur (6 channels); a real is the target on its own
    blur, so the same image scores the same as fake or real, and a step trains G and D without fresh samples."""
    from studio.train.gan import PRESETS, binomial_blur, high_pass

    assert PRESETS["cpu64_paired"].adv_paired and not PRESETS["cpu64_paired"].adv_synthesis_only
    torch.manual_seed(0)
    gen = dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0, channel_base=256,
               channel_max=32, conv_clamp=None)
    cfg = TrainConfig(generator=gen, batch=4, recon_weight=1.0, adv_weight=0.5, adv_highpass=True, adv_paired=True,
                      r1_interval=2)
    t = Trainer(cfg, tmp_path, torch.device("cpu"))
    assert t.D.fromrgb.weight.shape[1] == 6
    target = to_float(np.random.RandomState(0).randint(0, 255, (4, 16, 16, 3)).astype(np.uint8), t.device)
    with torch.no_grad():
        expected = t.D(torch.cat([high_pass(target), binomial_blur(target)], 1))
        assert torch.equal(t._discriminate(target, target), expected)
    d0 = [p.clone() for p in t.D.parameters()]
    seen = set()
    for _ in range(2):
        seen |= set(t.train_step(torch.randn(4, 16), target, torch.full_like(target, float("nan"))))
    assert {"l1", "g_adv", "d", "r1"} <= seen
    assert all(torch.isfinite(p).all() for p in t.D.parameters())  # the (NaN) reals argument is not read
    assert any(not torch.equal(a, b) for a, b in zip(t.D.parameters(), d0, strict=True))


def test_frozen_noise_strengths_stay_while_the_rest_trains(tmp_path):
    """freeze_noise: an adversarial step moves the synthesis weights but no layer's noise strength (which an
    adversarial fine-tune with constant noise otherwise grows into a fixed texture)."""
    torch.manual_seed(0)
    gen = dict(z_dim=16, w_dim=16, resolution=16, mapping_layers=2, mapping_lr_mul=1.0, channel_base=256,
               channel_max=32, conv_clamp=None)
    target = to_float(np.random.RandomState(0).randint(0, 255, (4, 16, 16, 3)).astype(np.uint8), torch.device("cpu"))
    moved = {}
    for freeze in (False, True):
        cfg = TrainConfig(generator=gen, batch=4, recon_weight=1.0, adv_weight=1.0, adv_paired=True,
                          freeze_noise=freeze)
        t = Trainer(cfg, tmp_path / str(freeze), torch.device("cpu"))
        before = {n: p.clone() for n, p in t.G.named_parameters()}
        for _ in range(3):
            t.train_step(torch.randn(4, 16), target, target)
        after = dict(t.G.named_parameters())
        noise = [n for n in before if n.endswith("noise_strength")]
        assert noise
        moved[freeze] = (any(not torch.equal(before[n], after[n]) for n in noise),
                         any(not torch.equal(before[n], after[n]) for n in before if n not in noise))
    assert moved[False] == (True, True)  # unfrozen, the strengths train too
    assert moved[True] == (False, True)


def test_the_command_line_sets_the_fine_tune_options(tmp_path, monkeypatch):
    """--lr, --adv-whole and --freeze-noise reach the config the trainer is built with."""
    import studio.train.gan as gan

    built = {}

    class Stop(Exception):
        pass

    def fake_trainer(cfg, out, device):
        built["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(gan, "Trainer", fake_trainer)
    monkeypatch.setattr(gan, "make_dataset", lambda n, z_dim, res, seed, path, procs: (
        np.zeros((1, z_dim), np.float32), np.zeros((1, res, res, 3), np.uint8), np.zeros((1, res, res), np.uint8)))
    with pytest.raises(Stop):
        gan.main(["--preset", "cpu64_paired", "--out", str(tmp_path), "--lr", "0.0001", "--adv-whole",
                  "--freeze-noise"])
    cfg = built["cfg"]
    assert cfg.lr == 0.0001 and not cfg.adv_highpass and cfg.freeze_noise and cfg.adv_paired
    assert gan.PRESETS["cpu64_paired"].adv_highpass and not gan.PRESETS["cpu64_paired"].freeze_noise


def test_kimg_stops_the_run_once_it_has_seen_that_many_images(monkeypatch, tmp_path):
    import studio.train.gan as gan

    class CountingTrainer:
        def __init__(self, cfg, out, device):
            self.cfg, self.step, self.images_seen, self.saved, self.G_ema = cfg, 0, 0, 0, None

        def train_step(self, z, target, reals, weights):
            self.step += 1
            self.images_seen += len(z)
            return {}

        def save(self):
            self.saved += 1

        def log(self, **row):
            pass

        def _lr(self):
            return self.cfg.lr

    made = []

    def build(cfg, out, device):
        made.append(CountingTrainer(cfg, out, device))
        return made[-1]

    monkeypatch.setattr(gan, "Trainer", build)
    monkeypatch.setattr(gan, "sample_grid", lambda G, z, path: None)
    monkeypatch.setattr(gan, "make_dataset", lambda n, z_dim, res, seed, path, procs: (
        np.zeros((4, z_dim), np.float32), np.zeros((4, res, res, 3), np.uint8), np.zeros((4, res, res), np.uint8)))
    assert gan.main(["--preset", "cpu64", "--out", str(tmp_path), "--batch", "10", "--kimg", "0.095",
                     "--minutes", "5"]) == 0
    (trainer,) = made
    assert trainer.images_seen == 100 and trainer.step == 10 and trainer.saved >= 1
