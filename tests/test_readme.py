"""README.md's Python blocks that run in seconds, run as written; the figures their comments quote are checked."""

import re
from pathlib import Path

import torch

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_block(after: str) -> str:
    """The first ```python block after the heading or sentence `after`."""
    return README.split(after, 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_the_data_layer_block_runs_and_its_quoted_figures_hold():
    block = python_block("The data layer on its own")
    scope: dict = {}
    exec(block, scope)
    shape = re.search(r"shape \((\d+), (\d+)\)", block).groups()
    assert scope["df"].shape == tuple(int(n) for n in shape)
    quoted = re.search(r"# (\d+), (\d+), (\d+) windows", block).groups()
    splits = scope["splits"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == tuple(int(n) for n in quoted)
    x, y = scope["x"], scope["y"]
    assert tuple(x.shape) == (96, 7) and tuple(y.shape) == (96, 7)


def test_the_memory_block_runs_as_written():
    torch.manual_seed(0)
    scope: dict = {}
    exec(python_block("## The memory"), scope)
    assert scope["y"].shape == (8, 1024, 128) and scope["y_next"].shape == (8, 256, 128)
    assert scope["state"].tokens_seen == 1024 + 256
    assert scope["mac"] is not None
