import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tests.data.helpers import write_series
from titans_ts.data import StandardScaler, load_dataset, make_splits, split_borders
from titans_ts.data.protocol import minimum_rows
from titans_ts.errors import ConfigError, ConstantColumnWarning, DataValidationError


def test_ett_borders_are_12_4_4_months_with_lookback_overlap():
    borders = split_borders(17420, 96, 96, "ett_hourly")
    assert borders.train == (0, 8640)
    assert borders.val == (8640 - 96, 11520)
    assert borders.test == (11520 - 96, 14400)
    assert split_borders(69680, 96, 96, "ett_15min").test == (46080 - 96, 57600)


def test_scaler_statistics_come_from_training_rows_only():
    frame = load_dataset("ETTh1")
    splits = make_splits(frame, 96, 96, "ett_hourly")
    train_rows = frame.to_numpy()[:8640]
    np.testing.assert_allclose(splits.scaler.mean_, train_rows.mean(axis=0))
    np.testing.assert_allclose(splits.scaler.scale_, train_rows.std(axis=0))
    assert not np.allclose(splits.scaler.mean_, frame.to_numpy()[:14400].mean(axis=0))
    # Changing val/test rows changes nothing in the scaler.
    changed = frame.copy()
    changed.iloc[8640:] *= 10.0
    np.testing.assert_array_equal(make_splits(changed, 96, 96, "ett_hourly").scaler.mean_, splits.scaler.mean_)


def test_windows_are_scaled_slices_and_inverse_transform_restores_units():
    frame = load_dataset("ETTh1")
    splits = make_splits(frame, 96, 96, "ett_hourly")
    x, y = splits.test[0]
    assert x.shape == (96, 7) and y.shape == (96, 7)
    np.testing.assert_allclose(
        splits.scaler.inverse_transform(y.numpy()), frame.to_numpy()[11520:11616], rtol=1e-5, atol=1e-4
    )
    last_x, last_y = splits.test[len(splits.test) - 1]
    np.testing.assert_allclose(
        splits.scaler.inverse_transform(last_y.numpy())[-1], frame.to_numpy()[14399], rtol=1e-5, atol=1e-4
    )
    with pytest.raises(IndexError):
        splits.test[len(splits.test)]


def test_loaders_keep_every_window():
    frame = load_dataset("ETTh1")
    splits = make_splits(frame, 96, 96, "ett_hourly")
    loaders = splits.loaders(batch_size=64)
    for name in ("train", "val", "test"):
        seen = sum(len(x) for x, _ in loaders[name])
        assert seen == len(getattr(splits, name))
        assert loaders[name].drop_last is False
    first_test_batch = next(iter(loaders["test"]))[0]
    assert torch.equal(first_test_batch[0], splits.test[0][0])  # test order is not shuffled


def test_constant_column_is_centred_not_divided_by_zero(tmp_path):
    frame = write_series(tmp_path / "x.csv", rows=400).drop(columns="date")
    frame["flat"] = 5.0
    with pytest.warns(ConstantColumnWarning, match=r"Column\(s\) \['flat'\] are constant .* consider dropping"):
        splits = make_splits(frame, 24, 12, targets=[0])  # an input: it may be dropped
    with pytest.warns(ConstantColumnWarning, match=r"target\(s\) \['flat'\] are constant .* in data units"):
        make_splits(frame, 24, 12)  # every column forecast: a target cannot be dropped
    tupled = frame.set_axis(pd.MultiIndex.from_tuples([("x", str(c)) for c in frame.columns]), axis=1)
    with pytest.warns(ConstantColumnWarning, match=r"\[\('x', 'flat'\)\] are constant"):
        make_splits(tupled, 24, 12)  # labels as given (tuples were read as arrays, which cannot be compared)
    x, _ = splits.train[0]
    assert torch.isfinite(x).all()
    assert torch.all(x[:, -1] == 0)


def test_scaler_without_constant_columns_is_silent_and_round_trips():
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = StandardScaler().fit(values)
    restored = StandardScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(restored.inverse_transform(restored.transform(values)), values)


def test_series_too_short_says_how_many_rows_are_needed(tmp_path):
    write_series(tmp_path / "short.csv", rows=200)
    frame = load_dataset(tmp_path / "short.csv")
    with pytest.raises(DataValidationError, match=rf"too short.*At least {minimum_rows(96, 96)} rows"):
        make_splits(frame, 96, 96)
    with pytest.raises(DataValidationError, match="ett_hourly protocol needs 14400 rows"):
        make_splits(frame, 96, 96, "ett_hourly")
    assert len(make_splits(load_dataset(tmp_path / "short.csv"), 24, 12).train) > 0


def test_minimum_rows_is_tight():
    need = minimum_rows(96, 96)
    split_borders(need, 96, 96)
    with pytest.raises(DataValidationError):
        split_borders(need - 1, 96, 96)
    with pytest.raises(DataValidationError, match=r"lookback is longer than the training split \(700 rows\)"):
        split_borders(1000, 2000, 96)


def test_bad_configuration():
    with pytest.raises(ConfigError, match=r"impossible setting\(s\): lookback=0 \(a positive integer\)"):
        split_borders(1000, 0, 96)
    with pytest.raises(ConfigError, match=r"protocol='monthly' \(a split protocol: one of ett_hourly, .* rows_A_B\)"):
        split_borders(1000, 96, 96, "monthly")


def test_a_users_ratio_split():
    from titans_ts.data.protocol import ratio_protocol

    assert ratio_protocol(0.6, 0.2, 0.2) == ratio_protocol(60, 20, 20) == "ratio_60_20_20"
    borders = split_borders(1000, 24, 12, "ratio_60_20_20")
    assert borders.train == (0, 600) and borders.val == (600 - 24, 800) and borders.test == (800 - 24, 1000)
    assert split_borders(1000, 24, 12, ratio_protocol(0.7, 0.1, 0.2)) == split_borders(1000, 24, 12)
    for bad in ((0.7, 0.2, 0.2), (0.75, 0.05, 0.195), (1.0, 0.0, 0.0)):
        with pytest.raises(ConfigError, match="sum to 1"):
            ratio_protocol(*bad)
    with pytest.raises(ConfigError, match="ratio_A_B_C"):
        split_borders(1000, 24, 12, "ratio_50_50")


def test_a_split_by_dates():
    import pandas as pd

    from titans_ts.data import date_protocol

    index = pd.date_range("2017-01-01", periods=1000, freq="h")
    protocol = date_protocol(index, "2017-01-20", "2017-02-01 06:30")
    assert protocol == "rows_456_751"  # 19 days of hours; the first row on or after 06:30 is 07:00
    borders = split_borders(1000, 24, 12, protocol)
    assert borders.train == (0, 456) and borders.val == (456 - 24, 751) and borders.test == (751 - 24, 1000)
    assert index[borders.val[0] + 24] == pd.Timestamp("2017-01-20")
    assert date_protocol(index, "20/01/2017", "01/02/2017 06:30") == protocol  # day first, as 20/01 must be
    assert date_protocol(index, "20/01/2017", "2017-02-01 06:30") == protocol  # an ISO date as written
    assert date_protocol(index, "20.01.2017", "01.02.2017 06:30") == protocol  # dotted: day first, as files are
    with pytest.raises(ConfigError, match="must come before"):
        date_protocol(index, "2017-02-01", "2017-01-20")
    with pytest.raises(DataValidationError, match="test start 2018-01-01 00:00:00 is outside the data"):
        date_protocol(index, "2017-01-20", "2018-01-01")
    with pytest.raises(ConfigError, match="dates such as"):
        date_protocol(index, "soon", "later")
    with pytest.raises(ConfigError, match="indexed by step"):
        date_protocol(pd.RangeIndex(1000), "2017-01-20", "2017-02-01")
    with pytest.raises(DataValidationError, match="too short.*so that the test split has more"):
        split_borders(1000, 24, 12, "rows_456_995")  # 5 test rows: the split the dates chose, not the series
    with pytest.raises(DataValidationError, match="too short.*or split the rows so that the train split has more"):
        split_borders(1000, 24, 12, "rows_30_500")
    with pytest.raises(ConfigError, match="either as fractions or as dates"):
        from titans_ts.data import protocol_for

        protocol_for("mine.csv", (0.7, 0.1, 0.2), ("2017-01-20", "2017-02-01"))
