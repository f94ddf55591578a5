"""The one registry of batch jobs: name, label, the parameters each job reads, and the builder.

The CLI (`ganstudio batch NAME`) and the studio's Batch panel both plan jobs from here, so a job means the same
in both and a parameter is described once (its help is the CLI's `--help` line and the panel's tooltip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .edits import EditError, EditStack, parse_channel_list

if TYPE_CHECKING:  # numpy only at import: the CLI's parser lists the jobs without loading torch
    from .engine import Engine
    from .jobs import Job

PARAM_HELP = {
    "n": "images / frames / new latents",
    "k": "steps per slider or tab (k = 1: its value alone)",
    "start": "first tab slider value of a combinatoric (its frames run from start to the slider's value)",
    "past_zero": "attribute spectrum on through zero to the opposite strength",
    "channels": "axis sweep channels, e.g. 0-63 (default: all)",
    "folder": "folder of PNGs (each one's latent is used)",
    "inputs": "PNGs to interpolate between, in order",
    "method": "lerp or slerp in w",
    "rng_seed": "makes new latents reproducible",
}


@dataclass
class JobArgs:
    """Every parameter any job reads; each job uses those its spec lists."""

    n: int = 8
    k: int = 3
    start: float = 0.0
    past_zero: bool = False
    channels: str = ""
    folder: str = ""
    inputs: list[str] = field(default_factory=list)
    method: str = "lerp"
    rng_seed: int | None = None
    tab_index: int | None = None  # the tab an axis sweep runs over (None: the last)


Builder = Callable[["Engine", EditStack, JobArgs], "Job"]


@dataclass(frozen=True)
class JobSpec:
    name: str  # the CLI's name
    label: str  # the studio's
    params: tuple[str, ...]
    help: str
    build: Builder


def _jobs():
    from . import jobs

    return jobs


def _folder(a: JobArgs) -> str:
    if not a.folder.strip():
        raise EditError("give a folder of PNGs")
    return a.folder.strip()


def _axis(eng: Engine, stack: EditStack, a: JobArgs) -> Job:
    if not stack.tabs:
        raise EditError("the axis sweep needs a tab: it runs over its layer's channels")
    index = len(stack.tabs) - 1 if a.tab_index is None else a.tab_index
    if not 0 <= index < len(stack.tabs):
        raise EditError("choose a tab: the sweep runs over its layer's channels")
    tab = stack.tabs[index]
    text = a.channels.strip()
    channels = sorted(parse_channel_list(text, tab.weights[tab.layers[0]].shape[0])) if text else None
    return _jobs().axis_aligned_sweep(stack, index, channels)


JOB_SPECS: tuple[JobSpec, ...] = (
    JobSpec("new-latents", "New latents", ("n", "rng_seed"),
            "n random latents with the current sliders and tabs",
            lambda e, s, a: _jobs().new_latents(s, a.n, a.rng_seed)),
    JobSpec("attribute-spectrum", "Attribute spectrum", ("n", "past_zero"),
            "n frames from no attribute to the sliders' strengths",
            lambda e, s, a: _jobs().attribute_spectrum(s, a.n, a.past_zero)),
    JobSpec("attribute-combinatoric", "Attribute combinatoric", ("k",),
            "k steps of every non-zero attribute slider, every combination",
            lambda e, s, a: _jobs().attribute_combinatoric(s, a.k)),
    JobSpec("attribute-sequential", "Attribute sequential", ("k",),
            "k steps of one attribute slider at a time, the others at zero",
            lambda e, s, a: _jobs().attribute_combinatoric(s, a.k, sequential=True)),
    JobSpec("fmap-combinatoric", "Fmap combinatoric", ("k", "start"),
            "k values of every active tab's slider from start to its value, every combination",
            lambda e, s, a: _jobs().fmap_combinatoric([s], a.k, a.start)),
    JobSpec("new-latent-combinatoric", "New latent combinatoric", ("n", "k", "start", "rng_seed"),
            "the fmap combinatoric for n new latents",
            lambda e, s, a: _jobs().new_latent_combinatoric(s, a.n, a.k, a.start, a.rng_seed)),
    JobSpec("fmap-folder-combinatoric", "Fmap combinatoric on a folder", ("folder", "k", "start"),
            "the fmap combinatoric for the latent of every PNG in a folder",
            lambda e, s, a: _jobs().folder_combinatoric(e, s, _folder(a), a.k, a.start)),
    JobSpec("axis-sweep", "Fmap axis-aligned sweep", ("channels",),
            "the tab with each channel alone, + and -, with a labelled contact sheet", _axis),
    JobSpec("apply-folder", "Apply sliders and tabs to a folder", ("folder",),
            "every PNG of a folder re-rendered with its latent and the current sliders and tabs",
            lambda e, s, a: _jobs().apply_to_folder(e, s, _folder(a))),
    JobSpec("interpolate", "Interpolate PNGs", ("inputs", "n", "method"),
            "n images between each consecutive pair of PNGs",
            lambda e, s, a: _jobs().interpolate(e, a.inputs, a.n, a.method)),
)


def job_spec(name_or_label: str) -> JobSpec:
    """The spec of a job by its CLI name or its studio label."""
    for spec in JOB_SPECS:
        if name_or_label in (spec.name, spec.label):
            return spec
    raise EditError(f"unknown job {name_or_label!r} (have: {', '.join(s.name for s in JOB_SPECS)})")


def plan(engine: Engine, name: str, stack: EditStack, args: JobArgs) -> Job:
    """Plan the named job from the current stack."""
    return job_spec(name).build(engine, stack, args)
