"""`titans-ts`'s tables and notes: metrics, per-group errors, the quantile scores, which forecaster was used."""

from __future__ import annotations

from rich.table import Table

from cli._common import console


def errors_table(title: str, errors) -> Table:
    table = Table(title=title)
    table.add_column(errors.index.name)
    for column in ("MSE (scaled)", "MAE (scaled)", "MSE (data units)", "MAE (data units)"):
        table.add_column(column)
    for key, row in errors.iterrows():
        table.add_row(str(key), *(f"{row[c]:.4g}" for c in ("mse_scaled", "mae_scaled", "mse", "mae")))
    return table


def forecaster_note(record: dict) -> str:
    """Which forecaster the numbers and forecasts are from: the model, or the floor that replaced it, and why."""
    return f"Forecaster used: {record['forecaster_used']}. Why: {record['fallback_reason']}."


def reset_mix_note(history: dict) -> str | None:
    """History mode with online_reset_mix="auto": the value chosen and the validation scores it was chosen by."""
    choice = history.get("online_reset_mix") or {}
    if not choice.get("val_mse"):
        return None
    scores = ", ".join(f"{mix} {mse:.4f}" for mix, mse in choice["val_mse"].items())
    if len(set(choice["val_mse"].values())) == 1:  # e.g. online_from="split" on a split shorter than a segment
        return (
            f"Online reset mix {choice['chosen']}: every candidate scored the same online validation MSE ({scores}): "
            "no validation forecast read past a whole segment, after which the pull applies; nothing chose it."
        )
    return f"Online reset mix {choice['chosen']}, chosen on online validation MSE ({scores})."


def blend_note(blend: float) -> str | None:
    """History mode with online_blend < 1: what an online forecast is made of."""
    if blend >= 1:
        return None
    return (
        f"Online forecasts are blended (online_blend={blend}): {blend} x the carried memory's + {1 - blend:g} x the "
        "frozen one at the same row."
    )


def history_note(online_from: str) -> str:
    """A history-mode model's two scores in words: where its online memory starts reading (`online_from`)."""
    read = (
        "the split from its first row (lookback rows before its first window)"
        if online_from == "split"
        else "the series from its first row in time order (train, val, the earlier test rows)"
    )
    return f"History mode: frozen resets the memory for every window; online lets it read {read}, learning as it reads."


def print_quantile_scores(metrics: dict, notes: bool = True) -> None:
    """A model with quantiles: the levels' scores on val and test (quantiles.QuantileScores), where its levels come
    from and, unless `notes` is False (fit: its warning said them already), the calibration's notes."""
    if "quantiles" not in metrics:
        return
    table = Table(title=f"Quantiles {metrics['quantiles']} ({metrics['calibration']['method']} calibration)")
    for column in ("split", "mean wQL", "CRPS (approx.)", "coverage (nominal)", "width"):
        table.add_column(column)
    for split in ("val", "test", "test_online"):
        if split not in metrics:  # test_online: evaluate --online
            continue
        m = metrics[split]
        coverage = ", ".join(f"{v:.3f} ({_nominal(k)})" for k, v in m["coverage"].items()) or "-"
        width = ", ".join(f"{v:.3f}" for v in m["width"].values()) or "-"
        table.add_row(split.replace("_", ", "), f"{m['mean_wql']:.4f}", f"{m['crps']:.4f}", coverage, width)
    console.print(table)
    console.print("Validation calibrates the levels: its coverage is in-sample, the test's is not.", highlight=False)
    calibration = metrics["calibration"]
    if calibration.get("source"):  # the head's levels, or intervals around a floor's point forecast
        console.print(f"Levels: {calibration['source']}.", highlight=False)
    for note in calibration.get("notes", []) if notes else []:  # e.g. too few validation windows for a level
        console.print(f"[bold yellow]Calibration: {note}.[/]", highlight=False)


def _nominal(interval: str) -> str:
    low, high = map(float, interval.split("-"))
    return f"{round(100 * (high - low))} %"


def online_note(metrics: dict) -> str:
    """A window-mode model's online test score (evaluate --online), and who made it: where a floor forecasts in
    the model's place, nothing is carried."""
    from titans_ts.forecasting.floors import MODEL

    used, m = metrics.get("forecaster_used", MODEL), metrics["test_online"]
    how = "memory carried forward" if used == MODEL else f"{used}, in the model's place: nothing carried"
    return f"Test, online ({how}): MSE {m['mse']:.4f}, MAE {m['mae']:.4f} (scaled), {m['windows']} windows."


def metrics_table(title: str, metrics: dict) -> Table:
    """val and test; a history-mode model's frozen and online rows. Where a floor forecasts in the model's place
    (fallback), the title says the scores are the floor's, and a history-mode model's rows are one pair."""
    from titans_ts.forecasting.floors import MODEL

    used = metrics.get("forecaster_used", MODEL)
    if used != MODEL:
        title += f": the scores of {used}, which forecasts in the model's place"
    table = Table(title=title)
    for column in ("split", "MSE (scaled)", "MAE (scaled)", "windows"):
        table.add_column(column)
    rows = {"val": "val", "test": "test"}
    if "val_online" in metrics and used == MODEL:
        rows = {"val, frozen": "val", "test, frozen": "test"}
        rows |= {"val, online": "val_online", "test, online": "test_online"}
    for label, key in rows.items():
        m = metrics[key]
        table.add_row(label, f"{m['mse']:.4f}", f"{m['mae']:.4f}", str(m["windows"]))
    return table


def benchmark_cell(cell: dict | None, seeds: int) -> str:
    """A benchmark table's cell: test MSE / MAE over the seeds that ran ("-" when none did), and how many of the
    asked seeds those are when some failed."""
    from titans_ts.forecasting.benchmark import mean_std

    if cell is None:
        return "-"
    ran = len(cell["mse"])
    short = f" ({ran} of {seeds} seeds)" if ran < seeds else ""
    return f"{mean_std(cell['mse'])} / {mean_std(cell['mae'])}{short}"


def print_benchmark_table(records: list, dataset: str, lookback: int, horizons: list, seeds: list) -> None:
    """The benchmark's table of test MSE / MAE per model and horizon, and the lookbacks that differ."""
    from titans_ts.forecasting.benchmark import summarize
    from titans_ts.forecasting.settings import dataset_label

    table = Table(title=f"{dataset_label(dataset)}: test MSE / MAE, lookback {lookback}, seeds {seeds}")
    for column in ["model", *(f"{h}" for h in horizons), "average"]:
        table.add_column(column)
    for model, row in summarize(records, horizons).items():
        cells = [benchmark_cell(row["horizons"].get(h), len(seeds)) for h in horizons]  # "-": failed
        average = row["average"]
        table.add_row(model, *cells, "-" if average is None else f"{average[0]:.3f} / {average[1]:.3f}")
    console.print(table)
    other_lookbacks = sorted({(r["model"], r["lookback"]) for r in records if r.get("lookback", lookback) != lookback})
    for model, seen in other_lookbacks:  # seasonal naive sees at least one season
        console.print(f"{model} saw a lookback of {seen} steps (one season), the others {lookback}.")
