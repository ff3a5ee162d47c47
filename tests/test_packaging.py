"""The wheel carries the bundled data: a non-editable install loads ETTh1 from anywhere."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_built_wheel_loads_bundled_data_from_another_directory(tmp_path):
    wheel_dir, target, elsewhere = tmp_path / "wheel", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(wheel_dir.glob("titans_ts-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    script = (
        "import titans_ts, sys; from titans_ts.data import load_dataset;"
        f"assert titans_ts.__file__.startswith({str(target)!r}), titans_ts.__file__;"
        "print(load_dataset('ETTh1').shape)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "(17420, 7)"
