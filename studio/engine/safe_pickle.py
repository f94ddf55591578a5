"""An allow-list unpickler for NVlabs network pickles that never imports or runs code from the file.

NVlabs snapshots store every network as `torch_utils.persistence._reconstruct_persistent_obj(meta)` where
`meta['module_src']` is Python source that the stock loader `exec`s.  Here that function becomes an inert
`PersistentRecord` holding the class name and the module's `__dict__` state; tensors are rebuilt by torch's own
weights-only machinery.  Any other global in the file is refused with a message that names it.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global outside the allow-list; nothing from it was imported or run."""


@dataclass
class PersistentRecord:
    """Inert stand-in for an NVlabs persistent network object: its class name and state dict, no code."""

    class_name: str
    state: dict
    version: int | None = None

    @property
    def params(self) -> dict:
        return dict(self.state.get("_parameters", {}))

    @property
    def buffers(self) -> dict:
        return dict(self.state.get("_buffers", {}))

    @property
    def modules(self) -> dict:
        return dict(self.state.get("_modules", {}))

    @property
    def init_kwargs(self) -> dict:
        return _plain(self.state.get("_init_kwargs", {}))


class _EasyDict(dict):
    """What `dnnlib.util.EasyDict` becomes: a plain dict that tolerates the pickled instance state."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _plain(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    return d


def _reconstruct_persistent_obj(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("unexpected persistent object record in the pickle")
    return PersistentRecord(class_name=str(meta.get("class_name")), state=meta.get("state") or {},
                            version=meta.get("version"))


def _load_storage_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_scalar(dtype: np.dtype, data: bytes = b"") -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("refusing a numpy object scalar in the pickle")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(name, align, copy)
    if dtype.hasobject:
        raise UnsafePickleError("refusing a numpy object dtype in the pickle")
    return dtype


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
}

TENSORFLOW_MODULES = ("dnnlib.tflib", "tensorflow")


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED_GLOBALS.get((module, name))
        if found is not None:
            return found
        if module.startswith(TENSORFLOW_MODULES):
            raise UnsafePickleError(
                f"this is an old TensorFlow StyleGAN pickle ({module}.{name}): not supported yet; "
                "convert it to PyTorch with stylegan2-ada-pytorch's legacy.py first")
        raise UnsafePickleError(
            f"refusing to load '{module}.{name}' from the pickle: GAN Studio only accepts the tensors and "
            "settings of NVlabs StyleGAN2 networks and never runs code from a file")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a pickle with persistent ids (not an NVlabs network pickle)")


def safe_load(data: bytes) -> Any:
    """Unpickle `data` with the allow-list; raises UnsafePickleError naming any refused global."""
    return SafeUnpickler(io.BytesIO(data)).load()
