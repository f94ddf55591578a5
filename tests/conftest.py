"""Shared fixtures: the NVlabs reference snapshot and small random-weight generators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine.network import Generator, GeneratorConfig

REPO = Path(__file__).resolve().parent.parent
FIXTURES_ENV = "GANSTUDIO_FIXTURES"  # the reference snapshots (default: ../shared/fixtures beside the checkout)
FIXTURES = Path(os.environ.get(FIXTURES_ENV, REPO.parent / "shared" / "fixtures"))
REF_PKL = FIXTURES / "sg2ada_skip64.pkl"
REF_NPZ = FIXTURES / "sg2ada_skip64_ref.npz"


def pytest_configure(config):
    """Every test, and every CLI or studio process a test starts, writes its user data into a fresh folder:
    never into the user's own data directory, the installation or the checkout."""
    import tempfile

    from studio import paths

    os.environ[paths.DATA_ENV] = tempfile.mkdtemp(prefix="ganstudio-test-data-")


def pytest_report_header(config):
    found = "found" if REF_PKL.exists() else f"MISSING: the tests comparing with them are skipped; set {FIXTURES_ENV}"
    return f"reference fixtures: {FIXTURES} ({found}); user data: {os.environ.get('GANSTUDIO_DATA')}"


@pytest.fixture(scope="session")
def ref_paths():
    if not REF_PKL.exists():
        pytest.skip(f"reference fixture missing at {REF_PKL}")
    return REF_PKL, np.load(REF_NPZ)


@pytest.fixture(scope="session")
def ref_model(ref_paths):
    from studio.engine.loaders import load_model

    return load_model(ref_paths[0])


def random_generator(resolution: int = 32, architecture: str = "skip", c_dim: int = 0, seed: int = 0,
                     **kw) -> Generator:
    """A small generator whose every parameter (biases, noise strengths, w_avg too) is random and non-zero."""
    torch.manual_seed(seed)
    cfg = GeneratorConfig(z_dim=32, w_dim=32, c_dim=c_dim, resolution=resolution, mapping_layers=2,
                          channel_base=512, channel_max=64, architecture=architecture,
                          conv_clamp=kw.pop("conv_clamp", 256.0), **kw)
    G = Generator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if "affine.bias" in name else 0.0))
        G.mapping.w_avg.copy_(torch.randn(cfg.w_dim) * 0.3)
    return G.eval().requires_grad_(False)


@pytest.fixture
def small_model(tmp_path):
    """A random 32px generator saved in the own format, loaded back as users would."""
    from studio.engine.loaders import load_model, save_model

    path = save_model(random_generator(), tmp_path / "small.safetensors")
    return load_model(path)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout)


def run_job(job, engine, out: Path, cancel=None, **kw) -> tuple[Path, dict, list]:
    """Run a batch job to its end: its folder, its manifest and every progress report."""
    progress = list(job.run(engine, out, cancel, **kw))
    folder = progress[-1].folder if progress else next(out.iterdir())
    return folder, json.loads((folder / "manifest.json").read_text()), progress


def random_sg3(config: str = "T", resolution: int = 32, c_dim: int = 0, seed: int = 0, **kw):
    """A small StyleGAN3 generator (filters designed, biases, w_avg and magnitude EMAs random and non-trivial)."""
    from studio.engine.network_sg3 import CONFIGS, SG3Config
    from studio.engine.network_sg3 import Generator as SG3Generator

    torch.manual_seed(seed)
    base = 512 if config == "T" else 1024
    cfg = SG3Config(z_dim=16, w_dim=16, c_dim=c_dim, resolution=resolution, channel_base=base,
                    channel_max=kw.pop("channel_max", 16 if config == "T" else 24), num_layers=kw.pop("num_layers", 8),
                    **CONFIGS[config], **kw)
    G = SG3Generator(cfg)
    with torch.no_grad():
        G.synthesis.design_filters()
        for name, p in G.named_parameters():
            if name.endswith("bias") and "input.affine" not in name:
                p.add_(torch.randn_like(p) * 0.2)
        for name, b in G.named_buffers():
            if name.endswith("magnitude_ema"):
                b.copy_(torch.empty([]).uniform_(0.3, 3.0))
        G.mapping.w_avg.copy_(torch.randn(cfg.w_dim) * 0.3)
        getattr(G.synthesis, G.synthesis.layer_names[-1]).weight.mul_(4)
    return G.eval().requires_grad_(False)


@pytest.fixture(params=["T", "R"])
def small_sg3(request, tmp_path):
    """A random 32px StyleGAN3 (T, then R) saved in the own format and loaded back."""
    from studio.engine.loaders import load_model, save_model

    return load_model(save_model(random_sg3(request.param), tmp_path / f"sg3{request.param.lower()}.safetensors"))
