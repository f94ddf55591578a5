"""Weighted sum of chosen feature maps, normalised and thresholded: the original spatial_map.py, done properly.

params:
  layer      which feature map to read (e.g. b16.conv0; `ganstudio info` lists them)
  channels   the channels and weights in the list syntax: `a,b,c`, `a-b`, `kxN` (e.g. "33,2x45,-1x7")
  threshold  0..1 on the normalised map; cells above it are selected (1), the rest not (0)
  smooth     average each cell with its neighbours first (0 = off, 1 = 3x3)
"""

import numpy as np

from studio.engine.edits import parse_channel_list

NAME = "spatial_map"
PARAMS = {"layer": "b16.conv0", "channels": "0", "threshold": 0.5, "smooth": 0}


def layers(params):
    return [params["layer"]]


def detect(features, image, params):
    maps = features[params["layer"]]
    weights = parse_channel_list(str(params["channels"]), maps.shape[0])
    m = sum(k * maps[c] for c, k in weights.items())
    for _ in range(int(params["smooth"])):
        p = np.pad(m, 1, mode="edge")
        m = sum(p[i:i + m.shape[0], j:j + m.shape[1]] for i in range(3) for j in range(3)) / 9
    lo, hi = float(m.min()), float(m.max())
    if hi - lo < 1e-12:
        return np.zeros_like(m)
    return ((m - lo) / (hi - lo) > float(params["threshold"])).astype(np.float32)
