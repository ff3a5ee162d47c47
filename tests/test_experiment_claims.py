"""The experiment scripts' workers share one run order: a run goes to exactly one worker, once."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from harness import Claims  # noqa: E402


def test_a_claimed_run_is_skipped_by_other_workers_and_a_done_run_by_all(tmp_path):
    result = tmp_path / "run.json"
    first, second = Claims(worker=True), Claims(worker=True)
    with first.claim(result) as mine:
        assert mine
        with second.claim(result) as theirs:
            assert not theirs  # the first worker holds it
        result.write_text("{}")
    with second.claim(result) as theirs:
        assert not theirs  # released, but done
    with Claims(worker=False).claim(tmp_path / "other.json") as mine:
        assert mine


def test_a_killed_workers_claim_goes_with_it(tmp_path):
    import subprocess

    result = tmp_path / "run.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); from harness import Claims; "
            "from pathlib import Path\n"
            "with Claims(worker=True).claim(Path(sys.argv[2])) as mine:\n"
            "    print(mine, flush=True); time.sleep(60)",
            str(Path(__file__).resolve().parents[1] / "experiments"),
            str(result),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "True"
    with Claims(worker=True).claim(result) as mine:
        assert not mine
    holder.kill()
    holder.wait()
    with Claims(worker=True).claim(result) as mine:
        assert mine


def test_grid_order_is_seed_major_with_the_general_check_after_each_datasets_seed_0(monkeypatch):
    import importlib.util

    from titans_ts.forecasting import defaults

    path = Path(__file__).resolve().parents[1] / "experiments" / "forecasting" / "grid.py"
    spec = importlib.util.spec_from_file_location("grid_under_test", path)
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    monkeypatch.setattr(defaults, "BY_FAMILY", {"ETTh": {"dim": 11}, "ETTm": {}, "weather": {}})
    config = {"datasets": ["ETTh1", "ETTm1"], "horizons": [96, 192], "seeds": [0, 1], "variants": ["lmm", "naive"]}
    order = list(grid._run_order({**config, "general_check": "why"}))
    assert order[:4] == [(0, "ETTh1", h, m) for h in (96, 192) for m in ("lmm", "naive")]
    assert order[4:6] == [(0, "ETTh1", 96, "lmm-general"), (0, "ETTh1", 192, "lmm-general")]
    assert order[6:10] == [(0, "ETTm1", h, m) for h in (96, 192) for m in ("lmm", "naive")]  # ETTm1: general
    assert all(seed == 1 for seed, *_ in order[10:]) and len(order) == 18
    assert not any(m == "lmm-general" for *_, m in grid._run_order(config))
