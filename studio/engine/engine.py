"""The engine facade: one loaded model, its renderer and its data folder; recipes in and out.

The CLI, the batch jobs and the GUI's render worker all talk to an `Engine`.  It never imports the GUI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from .edits import EditError, EditStack
from .loaders import LoadedModel, load_model
from .modeldata import ModelData
from .modelindex import ModelIndex
from .network import upsample2d
from .precision import DTYPE_NAMES, preview_dtype, preview_generator, preview_stop
from .recipe import Recipe, RecipeError, read_recipe, recipe_json, write_png
from .renderer import Renderer, RenderResult, check_finite, pick_device, to_uint8
from .windowed import Window


@dataclass
class LayerInfo:
    name: str
    resolution: int  # side of the image area (StyleGAN3: the sampling rate)
    channels: int
    w_index: int
    margin: int = 0  # StyleGAN3: map pixels beyond the image on each side

    @property
    def size(self) -> int:
        return self.resolution + 2 * self.margin


class Engine:
    def __init__(self, model: LoadedModel, data_root: str | Path | None = None, half: bool = False):
        """`data_root`: the user's data folder (None: paths.user_data_root(), i.e. $GANSTUDIO_DATA or the platform's
        user data directory).  The shipped data of a bundled model lies read-only beneath it."""
        self.model = model
        self.renderer = Renderer(model.generator, half=half)
        root = paths.user_data_root(data_root)
        self.data = ModelData(root, model.sha256, shipped_root=paths.shipped("data"),
                              legacy_root=paths.legacy_data_root())
        self.models = ModelIndex(root, tuple(paths.model_dirs(root)))
        self.model_file = str(Path(model.path).resolve())  # recorded in every recipe (found by hash otherwise)
        self._std: dict[str, np.ndarray] = {}
        self._std_unsaved: set[str] = set()  # layers whose data folder holds no usable statistics
        # live previews (precision.py): None where they would not be faster (a GPU, a CPU without native bf16)
        self.preview_dtype = None if half else preview_dtype(model.generator)
        self._preview: Renderer | None = None

    @classmethod
    def open(cls, model_path: str | Path, data_root: str | Path | None = None, device: str = "auto",
             half: bool = False) -> Engine:
        """Load a model and remember it among the recent models (where recipes look for their model)."""
        engine = cls(load_model(model_path, pick_device(device)), data_root, half=half)
        engine.models.remember(model_path, engine.model.sha256)
        return engine

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> str:
        return self.renderer.device.type

    def layers(self) -> list[LayerInfo]:
        """Every editable/capturable feature map, in network order."""
        return [LayerInfo(s.name, s.resolution, s.channels, s.w_index, s.margin)
                for s in self.renderer.layers.values()]

    def channel_std(self, layer: str, measure: bool = True) -> np.ndarray | None:
        """A layer's per-channel activation std (analysis.channel_std): from memory, the data folder, or measured
        once and kept there.  `measure=False` only looks (None when not measured yet)."""
        if layer not in self._std:
            # the data folder is read once per layer: an absent or broken file is not read (nor reported) again
            channels = self.renderer.layers[layer].channels
            std = None if layer in self._std_unsaved else self.data.channel_std(layer, channels)
            if std is None:
                self._std_unsaved.add(layer)
                if not measure:
                    return None
                from .analysis import STD_SAMPLES, channel_std

                std = channel_std(Renderer(self.renderer.G), layer)
                try:
                    self.data.save_channel_std(layer, std, STD_SAMPLES)
                except OSError:
                    pass  # a read-only data folder: measured again next time
            self._std[layer] = std
        return self._std[layer]

    # -------------------------------------------------------------------------------------------- rendering

    def render(self, stack: EditStack, capture: tuple[str, ...] = (), use_cache: bool = True,
               preview: bool = False) -> RenderResult:
        """One image; `preview=True` renders it in reduced precision where that is faster (`preview_dtype`), for
        the screen only (result.preview says which it got): saved files always come from the exact path."""
        if preview and self.preview_dtype is not None:
            if self._preview is None:  # its own generator copy and cache, built on the first preview
                self._preview = Renderer(preview_generator(self.renderer.G, self.preview_dtype))
            until = preview_stop(self.renderer.G, capture)
            result = self._preview.render(stack, capture=capture, use_cache=use_cache, until=until)
            if until is not None:  # the RGB image of the last block but one, upsampled as the skip path does
                result.images = upsample2d(result.images, self._preview.G.synthesis.b4.resample_filter)
            result.preview = True
            return result
        return self.renderer.render(stack, capture=capture, use_cache=use_cache)

    @property
    def preview_name(self) -> str | None:
        """What a live preview computes in ("bf16"), or None when the studio shows exact frames only."""
        return None if self.preview_dtype is None else DTYPE_NAMES[self.preview_dtype]

    def render_recipe(self, recipe: Recipe, use_cache: bool = False) -> RenderResult:
        """Re-create a recipe's image from its exact ws and tabs (or from its stack for a legacy latent)."""
        recipe.check_model(self.model.sha256, self.model.name)
        where = f"{recipe.source}: " if recipe.source else ""
        try:
            if recipe.ws is None:
                return self.render(recipe.stack, use_cache=use_cache)
            expected = (self.config.num_ws, self.config.w_dim)
            if recipe.ws.shape != expected:
                raise RecipeError(f"{where}the recipe's latent has shape {recipe.ws.shape}, this model needs "
                                  f"{expected}")
            import torch

            s = recipe.stack
            self.renderer.check_stack(s)
            if recipe.window is not None:
                self.renderer.check_window(recipe.window)
            ws = torch.as_tensor(recipe.ws, device=self.renderer.device)[None]
            result = self.renderer.synthesize(ws, [s.tabs], [s.noise_seed], s.noise_mode, use_cache=use_cache,
                                              moves=[(s.translate, s.rotate)], window=recipe.window)
            check_finite(result.images)  # a non-finite render is refused here, before anyone writes it
            return result
        except EditError as e:
            raise RecipeError(f"{where}{e}") from None

    # -------------------------------------------------------------------------------------------- files

    def recipe(self, stack: EditStack, ws: np.ndarray, window: Window | None = None) -> dict:
        """The recipe of an image rendered from `stack` with these exact ws [num_ws, w_dim]."""
        return recipe_json(stack, ws, self.model.sha256, self.model.name, self.device, self.model_file, window,
                           "fp16" if self.renderer.half else "fp32")

    def recipe_for(self, stack: EditStack, result: RenderResult, index: int = 0) -> dict:
        ws = result.ws[min(index, result.ws.shape[0] - 1)].detach().cpu().numpy()
        return self.recipe(stack, ws, result.window(index))

    def save_png(self, path: str | Path, stack: EditStack, result: RenderResult, index: int = 0) -> Path:
        """Write image `index` of a result with its full recipe (atomically); never a live preview's."""
        if result.preview:
            raise EditError("a live preview is for the screen only: files are written from the exact render")
        image = to_uint8(result.images[index:index + 1])[0]
        return write_png(path, image, self.recipe_for(stack, result, index))

    def read_png(self, path: str | Path) -> Recipe:
        """A PNG's recipe, checked against this model (`fit_recipe`)."""
        return self.fit_recipe(read_recipe(path))

    def fit_recipe(self, recipe: Recipe) -> Recipe:
        """A recipe read already, checked against this model; a legacy latent must fit this model's w."""
        recipe.check_model(self.model.sha256, self.model.name)
        if recipe.legacy:
            w = recipe.stack.w
            if w.size != self.config.w_dim:
                raise RecipeError(f"{recipe.source}: the original tool's latent has {w.size} values, "
                                  f"this model's w has {self.config.w_dim}")
            recipe.stack.w = np.broadcast_to(w, (self.config.num_ws, self.config.w_dim)).copy()
        return recipe
