"""tests/gpu: CUDA checks (`make test-gpu`). Without CUDA every test here is skipped, with the reason."""

from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
REASON = "needs a CUDA GPU: torch.cuda.is_available() is False here (run `make test-gpu` on a GPU machine)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)
