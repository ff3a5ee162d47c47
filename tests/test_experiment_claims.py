"""The experiment scripts: workers share one run order (a run goes to exactly one worker, once), and the
report compares models fairly and writes its numbers into the documents that quote them."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from harness import Claims, write_block  # noqa: E402

from titans_ts.forecasting.model import UNTRAINED  # noqa: E402


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


def test_a_held_run_stays_claimed_until_released_and_a_refused_claim_releases_nothing(tmp_path):
    result = tmp_path / "run.json"
    first, second = Claims(worker=True), Claims(worker=True)
    assert first.hold(result)  # held across calls, as a search worker holds the run it is on
    with second.claim(result) as theirs:
        assert not theirs
    assert not second.hold(result)
    second.release(result)  # it holds nothing: the first worker's claim stands
    assert not Claims(worker=True).hold(result)
    first.release(result)
    assert second.hold(result)
    second.release(result)


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


def _experiment_module(script: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / script
    spec = importlib.util.spec_from_file_location(f"{path.stem}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grid_module():
    return _experiment_module("forecasting/grid.py")


def test_grid_order_is_seed_major_with_the_general_check_after_each_datasets_seed_0(monkeypatch):
    from titans_ts.forecasting import defaults

    grid = _grid_module()
    monkeypatch.setattr(defaults, "BY_FAMILY", {"ETTh": {"dim": 11}, "ETTm": {}, "weather": {}})
    config = {"datasets": ["ETTh1", "ETTm1"], "horizons": [96, 192], "seeds": [0, 1], "variants": ["lmm", "naive"]}
    order = list(grid._run_order({**config, "general_check": "why"}))
    assert order[:4] == [(0, "ETTh1", h, m) for h in (96, 192) for m in ("lmm", "naive")]
    assert order[4:6] == [(0, "ETTh1", 96, "lmm-general"), (0, "ETTh1", 192, "lmm-general")]
    assert order[6:10] == [(0, "ETTm1", h, m) for h in (96, 192) for m in ("lmm", "naive")]  # ETTm1: general
    assert all(seed == 1 for seed, *_ in order[10:]) and len(order) == 18
    assert not any(m == "lmm-general" for *_, m in grid._run_order(config))


def _record(model, horizon, seed, mse):
    return {"variant": model, "model": model, "horizon": horizon, "seed": seed, "test": {"mse": mse, "mae": mse / 2}}


def test_models_are_compared_over_the_seeds_every_model_has_at_every_horizon():
    grid = _grid_module()
    config = {
        "horizons": [96, 192],
        "seeds": [0, 1, 2],
        "variants": ["lmm", "attention"],
        "anchors": {"D": {"paper": "0.300 / 0.310"}},
        "target": {"anchor": "paper", "paper_wins": 1, "note": "why"},
    }
    records = [
        _record(m, h, s, mse) for m, mse in (("lmm", 0.4), ("attention", 0.5)) for h in (96, 192) for s in (0, 1)
    ]
    records += [_record("lmm", 96, 2, 0.1), _record("lmm", 192, 2, 0.1)]  # only ours has seed 2: not compared
    records += [_record("attention", 96, 2, 0.1)]
    rows = {}
    for record in records:
        rows.setdefault((record["model"], record["horizon"]), []).append(record)
    seeds, averages = grid.compared(config, rows)
    assert seeds == [0, 1]
    assert averages["lmm"] == (0.4, 0.2) and averages["attention"] == (0.5, 0.25)
    section = "\n".join(grid._target_section(config, {"D": grid.compared(config, rows)}))
    assert "| D | 0,1 | 0.4000 | same backbone, causal attention | 0.5000 | -0.1000 | 0.300 | +0.1000 |" in section
    assert "ahead of every same-harness baseline on 1 of 1" in section and "paper's row" in section
    assert "on 0 of 1 (target: at least 1)" in section


def test_a_written_block_replaces_only_what_lies_between_its_markers(tmp_path):
    import pytest

    document = tmp_path / "README.md"
    document.write_text("intro\n- a list item:\n\n  <!-- s -->\n  old\n  <!-- /s -->\n\nrest\n")
    write_block(document, "<!-- s -->", "<!-- /s -->", ["  | new |", "  | table |"])
    assert (
        document.read_text() == "intro\n- a list item:\n\n  <!-- s -->\n  | new |\n  | table |\n  <!-- /s -->\n\nrest\n"
    )
    document.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no block"):
        write_block(document, "<!-- s -->", "<!-- /s -->", ["x"])
    assert document.read_text() == "no markers\n"


def test_the_documents_the_reports_write_into_have_their_markers():
    root = Path(__file__).resolve().parents[1]
    grid = _grid_module()
    readme = (root / "README.md").read_text()
    assert readme.count(grid.README_START) == 1 and readme.count(grid.README_END) == 1
    long_memory = _experiment_module("forecasting/long_memory_grid.py")
    assert readme.count(long_memory.README_START) == 1 and readme.count(long_memory.README_END) == 1
    cv = _experiment_module("genomics/cv.py")
    card = (root / "genomics" / "weights" / "titans-dna-small" / "MODEL_CARD.md").read_text()
    assert card.count(cv.CARD_START) == 1 and card.count(cv.CARD_END) == 1


def test_every_committed_grid_run_ended_on_its_own_not_cut_short():
    # Records written before stop_reason existed carry only epochs: a run cut short (a SIGTERM seen by
    # Lightning as an interrupt) would show fewer epochs than its budget without `patience` idle epochs.
    import json

    records = sorted(
        (Path(__file__).resolve().parents[1] / "experiments" / "results" / "runs" / "forecasting_grid").glob("*.json")
    )
    assert records
    cut_short = []
    for path in records:
        record = json.loads(path.read_text())
        history, params = record["history"], record["params"]
        if record["variant"] in UNTRAINED:
            continue
        idle_epochs = history["epochs_run"] - 1 - history["best_epoch"]
        finished = history["epochs_run"] >= params["epochs"] or idle_epochs >= params["patience"]
        if history.get("stop_reason") == "interrupted" or not finished:
            cut_short.append(path.name)
    assert not cut_short


def test_the_gate_check_weight_reads_only_truths_known_before_each_origin():
    """gate_check.py: w_t is the least-squares mix over forecast values of rows before t; a truth at or after t
    changes no weight up to t, and a perfect online forecaster gets all the weight once a truth is known."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from gate_check import gate_weights

    rng = np.random.default_rng(0)
    origins = np.arange(50, 130)
    targets = rng.normal(size=(len(origins), 6, 2))
    online, frozen = targets + 0.1 * rng.normal(size=targets.shape), targets + rng.normal(size=targets.shape)
    for half_life in (None, 12.0):
        weights = gate_weights(online, frozen, targets, origins, half_life)
        assert weights[0] == 0.5 and 0.8 < weights[-1] <= 1.0  # nothing known yet; then the better one
        cut = 40  # change every truth of rows >= origins[cut]: forecasts at origins <= origins[cut] keep theirs
        changed = targets.copy()
        rows = origins[:, None] + np.arange(6)
        changed[rows >= origins[cut]] += 3.0
        moved = gate_weights(online, frozen, changed, origins, half_life)
        assert (moved[: cut + 1] == weights[: cut + 1]).all() and (moved[cut + 1 :] != weights[cut + 1 :]).any()
        perfect = gate_weights(targets, frozen, targets, origins, half_life)
        assert (perfect[1:] == 1.0).all()


def test_the_residual_memory_check_corrects_each_origin_from_truths_that_end_before_it():
    """residual_memory_check.py: the correction at origin t reads no row at or after t; each depth learns
    (the corrections move once a truth is known, and fit a constant error); theta 0 is the forecaster alone."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from residual_memory_check import corrections, fit_linear

    torch.manual_seed(0)
    config = {"lookback": 24, "horizon": 6, "key_len": 8, "hidden": 16}
    series = torch.randn(200, 3).cumsum(0) * 0.1
    origins = torch.arange(24, 195)
    base = fit_linear(series, origins[:100], 24, 6, ridge=1e-3)
    settings = [(0.0, 0.0, 0.0), (0.1, 0.9, 0.01), (0.3, 0.0, 0.0)]
    cut = 150
    changed = series.clone()
    changed[cut:] += torch.randn(50, 3)
    for depth in (0, 1, 2):
        before = list(corrections(series, base, origins, 60, config, depth, settings))
        after = list(corrections(changed, base, origins, 60, config, depth, settings))
        for (origin, correction, _), (_, moved, _) in zip(before, after, strict=True):
            assert torch.equal(correction, moved) == (origin <= cut), (depth, origin)
        assert all(c[0].abs().max() == 0 for _, c, _ in before)  # theta 0: the forecaster alone
        assert before[0][1][1:].abs().max() > 0  # the others learned from the origins before 60
    # A forecaster that is always 1 below the truth: the depth-0 memory (online bias) learns the 1.
    flat, low = torch.zeros(200, 3), torch.zeros(25, 6)
    low[-1] = -1.0  # the bias row of the linear map
    streamed = list(corrections(flat, low, origins, 24, config, 0, [(0.3, 0.0, 0.0)]))
    assert all(torch.equal(error, torch.ones(3, 6)) for _, _, error in streamed)
    assert streamed[5][1].abs().max() == 0 and (streamed[-1][1] - 1).abs().max() < 1e-3


def test_the_restart_check_reads_each_patch_from_a_memory_started_one_to_two_periods_before_it():
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    sys.path.insert(0, str(Path(__file__).resolve().parent / "forecasting"))
    from restart_check import restarted_forecasts, restarted_readouts
    from test_long_memory import model_of, series_of

    from titans_ts.forecasting.long_memory_eval import online_forecasts

    model, series = model_of(error_tokens=True).eval(), series_of(200)
    period, n_patches = 5, 40
    with torch.no_grad():
        readouts = restarted_readouts(model, series, 0, n_patches, period)
        for patch in (0, 4, 5, 9, 10, 23, 39):  # its memory started at max(0, (patch // period - 1) * period)
            start = max(0, (patch // period - 1) * period)
            alone, _ = model.read_stream(series, start * 4, patch - start + 1)
            torch.testing.assert_close(readouts[:, :, patch], alone[:, :, -1], rtol=0, atol=1e-10)
            if start:  # a memory that read from one patch later is another one
                later, _ = model.read_stream(series, (start + 1) * 4, patch - start)
                assert not torch.allclose(readouts[:, :, patch], later[:, :, -1], rtol=0, atol=1e-6)
    origins = torch.arange(12, 150)
    assert torch.equal(restarted_forecasts(model, series, origins, 10**6), online_forecasts(model, series, origins))
    forecasts = restarted_forecasts(model, series, origins, period)
    changed = series.clone()
    changed[90:] += 3.0  # a forecast at an origin <= 90 reads only rows before it
    moved = restarted_forecasts(model, changed, origins, period)
    at = int((origins <= 90).sum())
    assert torch.equal(moved[:at], forecasts[:at]) and not torch.equal(moved[at:], forecasts[at:])


def test_trials_added_after_ours_ran_share_one_training_of_ours_again(tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    import long_memory_grid as grid

    trained = []

    def fake_run(dataset, horizon, seed, lookback, spec, test=False, keep=None):
        trained.append((dataset, horizon, seed, lookback, spec.get("memory"), keep))
        scored = {"mse": 0.5 + len(trained), "val_online": {"mse": 0.7}}
        fields = {field: scored for field, _ in grid.TRIALS.values()}
        test = {"online": {"mse": 0.4}, "frozen": {"mse": 0.3}} | fields
        kept = {"val": {"online": {"mse": 0.6}}, "history": {}, "params_count": 1, "protocol": "p"}
        return kept | {"settings": {"estimator": {}}, "test": test}

    monkeypatch.setattr(grid, "long_memory_run", fake_run)
    monkeypatch.setattr(grid, "spec_of", lambda search, model, dataset: {"memory": "lmm"})
    config = {"runs": str(tmp_path), "_path": "c.json", "_claims": Claims()}
    ours = tmp_path / grid.run_name("ETTh1", 96, 0, grid.OURS, 336)
    ours.write_text(json.dumps({"test": {"online": {"mse": 0.4}, "frozen": {"mse": 0.3}}}))  # before the trials
    for label in grid.TRIALS:
        path = tmp_path / grid.run_name("ETTh1", 96, 0, label, 336)
        grid._final_run(config, {}, path, "ETTh1", 96, 0, label, "variate + error tokens", 336)
        record = json.loads(path.read_text())
        assert record["test"]["online"]["mse"] == 1.5 and record["test"]["frozen"]["mse"] == 0.3
        assert record["from_run"] == "ours, trained again for the trials" and record["trained_at_commit"]
    assert len(trained) == 1 and trained[0][-1].name.endswith("-again")  # one training, its model kept


def test_history_mode_defaults_are_the_long_memory_searchs_choice_where_it_is_complete():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from long_memory_grid import OURS, choices, search_of, search_records, spec_of
    from long_memory_search import history_params

    from titans_ts.forecasting.defaults import ESTIMATOR, HISTORY_BY_DATASET, defaults_for

    search = search_of({"search": "experiments/configs/long_memory_search.json"})
    records = search_records(search)
    for dataset in search["datasets"]:
        chosen = choices(search, records, dataset)
        if chosen is None:
            assert dataset not in HISTORY_BY_DATASET, f"{dataset}: its search is not complete, nothing is chosen yet"
            continue
        model, lookback, _ = chosen[OURS]
        expected = {**history_params(spec_of(search, model, dataset)), "lookback": lookback}
        settings = {**ESTIMATOR, **defaults_for(dataset, "history"), "mode": "history"}
        wrong = {key: (settings[key], value) for key, value in expected.items() if settings[key] != value}
        assert not wrong, f"defaults.HISTORY_BY_DATASET / HISTORY_BASE for {dataset} (have, searched): {wrong}"


def test_the_long_memory_counts_take_only_datasets_where_every_model_has_its_average():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from long_memory_grid import ABLATION, OURS, _margins, _standing

    search = {"baselines": ["dlinear", "attention"]}
    config = {"published": {"Titans paper, L=96": {"a": 0.5, "b": 0.5, "c": 0.1}}}
    averages = {
        **{("a", m, "online"): v for m, v in ((OURS, 0.3), (ABLATION, 0.4), ("dlinear", 0.35), ("attention", 0.31))},
        **{("b", m, "online"): v for m, v in ((OURS, 0.3), (ABLATION, 0.2), ("dlinear", 0.35), ("attention", 0.29))},
        **{("c", m, "online"): v for m, v in ((OURS, 0.3), (ABLATION, 0.4), ("dlinear", 0.35))},  # attention: not yet
    }
    complete, ahead, ablation, beyond = _standing(config, averages, ["a", "b", "c"], search, OURS)
    assert complete == ["a", "b"] and ahead == ["a"] and ablation == ["a"] and beyond == ["a", "b"]
    assert _margins(config, averages, complete, search) == [
        "- ours minus the best same-harness baseline: a -0.0100 (attention), b +0.0100 (attention).",
        "- ours minus the ablation: a -0.1000, b +0.1000.",
        "- ours minus the Titans paper's row: a -0.2000, b -0.2000.",
    ]


def test_a_run_another_worker_is_making_is_in_progress_until_it_is_done(tmp_path):
    """What lets a trial wait for ours' run (which scores it) instead of training ours a second time."""
    result = tmp_path / "ours.json"
    first, second = Claims(worker=True), Claims(worker=True)
    assert not second.in_progress(result)  # nobody on it
    assert first.hold(result)
    assert second.in_progress(result) and not first.in_progress(result)
    assert second.in_progress(result)  # asking claims nothing
    result.write_text("{}")
    first.release(result)
    assert not second.in_progress(result)  # done


def test_a_changed_setting_is_compared_run_by_run_with_the_unchanged_runs_and_the_rule_says_met_only_when_it_is(
    tmp_path,
):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from nested_check import _comparison

    def record(dataset, horizon, online):
        after = {"online": online, "frozen": 0.5}
        return {"dataset": dataset, "horizon": horizon, "seed": 0, "own_val": after, "months_after": after,
                "history": {"epochs_run": 3}}  # fmt: skip

    base_runs = tmp_path / "base"
    base_runs.mkdir()
    for dataset, online in (("A", 0.40), ("B", 0.40)):
        (base_runs / f"{dataset}_h96_s0.json").write_text(json.dumps(record(dataset, 96, online)))
    (tmp_path / "base.json").write_text(json.dumps({"runs": str(base_runs)}))
    config = {"compare": str(tmp_path / "base.json"), "change": {"streams": 1}, "rule_min_lower": 2,
              "datasets": ["A", "B", "C"], "horizons": [96]}  # fmt: skip
    changed = [record("A", 96, 0.39), record("B", 96, 0.6), record("C", 96, 0.1)]  # C: no unchanged run to compare
    lines = _comparison(config, changed)
    assert "lower in 1 of 2 runs" in lines[-2] and lines[-1].endswith("at least 2 of 3: open.")
    assert "frozen on the months after: 2 of 2 without it, 1 with it." in lines[-2]
    assert sum(line.startswith("| A |") or line.startswith("| B |") for line in lines) == 2
    assert _comparison({**config, "rule_min_lower": 1}, changed)[-1].endswith(": met.")
    assert _comparison({**config, "rule_min_lower": 3}, changed)[-1].endswith(": not met.")


def test_the_cycle_memory_check_forecasts_each_origin_from_the_rows_before_it():
    """cycle_memory_check.py: the forecast at origin t reads no row at or after t; theta 0 is the fixed table;
    a memory that reads a cycle other than its starting table learns it."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    from cycle_memory_check import forecasts, phase_table, without_cycle
    from residual_memory_check import fit_linear

    torch.manual_seed(0)
    period, lookback, horizon = 6, 12, 4
    cycle = torch.randn(period, 2)
    series = cycle[torch.arange(300) % period] + 0.1 * torch.randn(300, 2)
    table = phase_table(series, 150, period)
    torch.testing.assert_close(table.T, cycle, atol=0.05, rtol=0)
    weights = fit_linear(without_cycle(series, table), torch.arange(lookback, 150 - horizon), lookback, horizon, 1e-3)
    settings = [(0.0, 0.0, 0.0), (0.1, 0.9, 0.001), (0.3, 0.0, 0.0)]
    cut = 220
    changed = series.clone()
    changed[cut:] += torch.randn(300 - cut, 2)
    before = list(forecasts(series, weights, table, settings, 0, 150, 290, lookback, horizon))
    after = list(forecasts(changed, weights, table, settings, 0, 150, 290, lookback, horizon))
    assert [origin for origin, _, _ in before] == list(range(150, 290))
    for (origin, forecast, _), (_, moved, _) in zip(before, after, strict=True):
        assert torch.equal(forecast, moved) == (origin <= cut), origin
    fixed = list(forecasts(series, weights, table, settings[:1], 150, 150, 290, lookback, horizon))
    assert all(torch.equal(a[1][0], b[1][0]) for a, b in zip(before, fixed, strict=True))  # theta 0: no learning
    # A cycle twice the table's: the learning memory's forecasts approach it, the fixed table's do not.
    doubled = 2 * cycle[torch.arange(300) % period]
    streamed = list(forecasts(doubled, weights, table, settings, 0, 150, 290, lookback, horizon))
    errors = torch.stack([(forecast - truth).square().mean((-1, -2)) for _, forecast, truth in streamed[-20:]])
    assert errors[:, 2].max() < 0.01 < errors[:, 0].min()


def test_a_test_run_of_an_earlier_choice_is_set_aside_and_not_counted(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "forecasting"))
    import long_memory_grid as grid

    def write(model, lookback, search_model):
        path = tmp_path / grid.run_name("ETTh1", 96, 0, model, lookback)
        record = {"dataset": "ETTh1", "horizon": 96, "seed": 0, "model": model, "search_model": search_model}
        path.write_text(json.dumps(record | {"lookback": lookback}))
        return path

    old_lookback = write(grid.OURS, 96, "variate + error tokens")
    old_candidate = write(grid.OURS, 336, "variate + error tokens")  # the same file name as the current choice's
    baseline = write("dlinear", 336, "dlinear")
    chosen = {"ETTh1": {grid.OURS: ("attention pretrained", 336, 0.8), "dlinear": ("dlinear", 336, 0.9)}}
    finals, superseded = grid.current_finals({"runs": str(tmp_path)}, chosen)
    assert list(finals) == [("ETTh1", "dlinear")]
    assert sorted(superseded) == sorted([old_lookback.name, old_candidate.name])

    grid.set_aside_if_superseded(old_candidate, "attention pretrained", 336)
    grid.set_aside_if_superseded(baseline, "dlinear", 336)
    assert not old_candidate.exists() and (tmp_path / "superseded" / old_candidate.name).exists()
    assert baseline.exists()  # the current choice's run stays where it is
    write(grid.OURS, 336, "attention pretrained")
    finals, superseded = grid.current_finals({"runs": str(tmp_path)}, chosen)
    assert finals[("ETTh1", grid.OURS)][96][0]["search_model"] == "attention pretrained"
    assert superseded == [old_lookback.name]
