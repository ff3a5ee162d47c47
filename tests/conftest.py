import os

# The Triton interpreter must be chosen before triton is imported anywhere.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(monkeypatch, tmp_path):
    """Every test runs in its own empty folder: none reads or writes the directory pytest was started in
    (where `make demo` leaves runs/). A test needing a file of the checkout finds it from its own __file__."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_user_data_env(monkeypatch, tmp_path_factory):
    """Tests never see the user's data folders or cache, and never download."""
    monkeypatch.delenv("TITANS_DATA_DIR", raising=False)
    monkeypatch.setenv("TITANS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
