"""The hostile corpus (tests/hostile.py): every crafted or broken file is refused with a clear message (or, for
random byte flips of a clean file, loads), within 5 s and 1 GB, runs nothing, and leaves the process able to load
a clean model bit-identically."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO

CATEGORIES = ("pickles", "zips", "safetensors", "pngs", "networks")
MAY_LOAD = ("clean-flip-",  # random byte flips in tensor data give a valid file with other weights
            "tf-loads-",  # a valid TF pickle whose build source would run code: it loads, the code never runs
            "hint-")  # a recipe's recorded model path is only a hint: an unusable one is ignored, the PNG renders
SECONDS = 5.0
RSS_MB = 1024


@pytest.mark.parametrize("category", CATEGORIES)
def test_hostile_corpus(category):
    proc = subprocess.run([sys.executable, "-m", "tests.hostile", category], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    head, rows = lines[0], lines[1:]
    assert len(rows) == head["cases"] > 10
    problems = []
    for r in rows:
        allowed = ("refused", "loaded") if r["name"].startswith(MAY_LOAD) else ("refused",)
        if r["outcome"] not in allowed:
            problems.append(f"{r['name']}: {r['outcome']} {r.get('message', '')[:400]}")
        if r["outcome"] == "refused" and not r.get("message"):
            problems.append(f"{r['name']}: refused without a message")
        if r["seconds"] > SECONDS or r["rss_mb"] > RSS_MB:
            problems.append(f"{r['name']}: {r['seconds']:.1f} s, {r['rss_mb']:.0f} MB")
        if not r["clean_after"]:
            problems.append(f"{r['name']}: a clean model no longer loads identically ({r.get('message')})")
        if r.get("marker"):
            problems.append(f"{r['name']}: hostile code ran (marker file exists)")
    refused = sum(r["outcome"] == "refused" for r in rows)
    print(f"{category}: {len(rows)} tried, {refused} refused, {len(rows) - refused} loaded, "
          f"{len(problems)} problems; slowest {max(r['seconds'] for r in rows):.2f} s, "
          f"peak {max(r['rss_mb'] for r in rows):.0f} MB")
    assert not problems, "\n".join(problems)
