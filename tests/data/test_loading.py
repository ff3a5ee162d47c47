import gzip
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.helpers import write_series
from titans_ts.data import load_dataset, make_splits
from titans_ts.data.sources import file_sha256
from titans_ts.errors import ChecksumError, DatasetNotFoundError, DataValidationError


@pytest.fixture(scope="module")
def supplied_dir(tmp_path_factory):
    """Generated ECL and Traffic files with the canonical schema (date + 321 / 862 columns)."""
    folder = tmp_path_factory.mktemp("supplied")
    write_series(folder / "electricity.csv", rows=1200, columns=321)
    write_series(folder / "traffic.csv.gz", rows=1200, columns=862, seed=1)
    return folder


@pytest.mark.parametrize("name, columns", [("ECL", 321), ("Traffic", 862)])
def test_supplied_datasets_load_from_data_dir(supplied_dir, name, columns):
    frame = load_dataset(name, data_dir=supplied_dir, verify=False)
    assert frame.shape == (1200, columns)
    splits = make_splits(frame, 96, 96, "ratio_70_10_20")
    # 70/10/20 %: 840 / 120 / 240 rows; val and test start 96 rows early.
    assert (len(splits.train), len(splits.val), len(splits.test)) == (
        840 - 191,
        120 + 96 - 191,
        240 + 96 - 191,
    )


@pytest.mark.parametrize("name, file", [("ECL", "electricity.csv"), ("Traffic", "traffic.csv")])
def test_checksum_mismatch_is_rejected_when_verifying(supplied_dir, name, file):
    with pytest.raises(ChecksumError, match=f"sha256 .* does not match the registered {name}.*verify=False"):
        load_dataset(name, data_dir=supplied_dir)


def test_titans_data_dir_is_searched_and_data_dir_wins(supplied_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TITANS_DATA_DIR", str(supplied_dir))
    assert load_dataset("ECL", verify=False).shape == (1200, 321)
    write_series(tmp_path / "electricity.csv", rows=800, columns=321)
    assert load_dataset("ECL", data_dir=tmp_path, verify=False).shape == (800, 321)


def test_missing_dataset_offline_names_file_url_and_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("Traffic", data_dir=tmp_path)
    message = str(info.value)
    assert "traffic.csv" in message and "https://" in message and str(tmp_path) in message
    assert "download" in message and "TITANS_DATA_DIR" in message
    with pytest.raises(DatasetNotFoundError, match="traffic.csv not found"):
        load_dataset("Traffic", download=False)


def test_download_with_wrong_content_keeps_nothing(monkeypatch, tmp_path):
    class FakeResponse:
        def __init__(self):
            self.chunks = [b"date,a\n2020-01-01,1\n", b""]

        def read(self, *args):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: FakeResponse())
    cache = Path(os.environ["TITANS_CACHE_DIR"])
    with pytest.raises(ChecksumError, match="nothing was kept"):
        load_dataset("ECL")
    assert list(cache.iterdir()) == []


def test_registered_file_given_by_path_is_verified_on_request(supplied_dir):
    path = supplied_dir / "electricity.csv"
    assert load_dataset(path).shape == (1200, 321)
    with pytest.raises(ChecksumError):
        load_dataset(path, verify=True)


def test_checksum_of_gzipped_file_is_of_its_content(tmp_path):
    plain = tmp_path / "a.csv"
    write_series(plain)
    packed = tmp_path / "b.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert file_sha256(plain) == file_sha256(packed)


def test_users_csv_loads_like_a_registered_dataset(tmp_path):
    original = write_series(tmp_path / "mine.csv", rows=500, columns=3)
    frame = load_dataset(tmp_path / "mine.csv")
    assert frame.shape == (500, 3)
    assert (frame.index == pd.DatetimeIndex(original["date"])).all()
    np.testing.assert_allclose(frame.to_numpy(), original.drop(columns="date").to_numpy())


def test_date_column_by_name_and_first_column(tmp_path):
    frame = pd.DataFrame({"when": pd.date_range("2020", periods=5, freq="D"), "x": range(5)})
    frame.to_csv(tmp_path / "first.csv", index=False)
    assert load_dataset(tmp_path / "first.csv").shape == (5, 1)
    frame = pd.DataFrame({"x": range(5), "stamp": pd.date_range("2020", periods=5, freq="D")})
    frame.to_csv(tmp_path / "named.csv", index=False)
    assert load_dataset(tmp_path / "named.csv", date_column="stamp").shape == (5, 1)


# --- bad input: each case raises a typed exception whose message says what and how to fix ---


def test_an_undated_file_is_indexed_by_step(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0, 5.0], "b": [3.0, 4.0, 6.0]}).to_csv(tmp_path / "x.csv", index=False)
    loaded = load_dataset(tmp_path / "x.csv")
    assert list(loaded.columns) == ["a", "b"] and loaded.index.name == "step"
    assert list(loaded.index) == [0, 1, 2] and loaded["b"].tolist() == [3.0, 4.0, 6.0]
    pd.DataFrame({"y": [1.0, 2.0]}).to_csv(tmp_path / "one.csv", index=False)  # one column: the same rule
    assert load_dataset(tmp_path / "one.csv").shape == (2, 1)
    with pytest.raises(DataValidationError, match="no column named 'when'"):
        load_dataset(tmp_path / "x.csv", date_column="when")


def test_unparseable_dates_name_the_rows(tmp_path):
    frame = write_series(tmp_path / "x.csv", rows=10)
    frame["date"] = frame["date"].astype(str)
    frame.loc[4, "date"] = "yesterday"
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataValidationError, match=r"not timestamps: row 5 \('yesterday'\)") as named:
        load_dataset(tmp_path / "x.csv")
    assert "--date-column" not in str(named.value)  # a column named date: its bad rows are the problem
    frame.loc[4, "date"] = "2016-07-01 06:00:00"  # (the timestamp it had)
    frame.insert(0, "site", "north")  # a text first column, no column named date: taken for the dates
    frame.rename(columns={"date": "when"}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataValidationError, match="taken for the date column because it is the first column"):
        load_dataset(tmp_path / "x.csv")
    assert load_dataset(tmp_path / "x.csv", date_column="when", columns=["c0", "OT"]).shape == (10, 2)


def test_non_numeric_column_is_named(tmp_path):
    frame = write_series(tmp_path / "x.csv", rows=10)
    frame["site"] = "north"
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataValidationError, match=r"non-numeric column\(s\) 'site' \(row 1: 'north'\)"):
        load_dataset(tmp_path / "x.csv")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nan_and_inf_are_refused_with_rows_and_columns(tmp_path, bad_value):
    frame = write_series(tmp_path / "x.csv", rows=10)
    frame.loc[3, "c1"] = bad_value
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataValidationError, match=r"\['c1'\]: at 2016-07-01 05:00:00 column 'c1'.*fill="):
        load_dataset(tmp_path / "x.csv")


@pytest.mark.parametrize("fill, expected", [("ffill", "previous"), ("zero", 0.0), ("interpolate", "mean")])
def test_fill_options(tmp_path, fill, expected):
    frame = write_series(tmp_path / "x.csv", rows=10)
    frame.loc[3, "c1"] = np.nan
    frame.to_csv(tmp_path / "x.csv", index=False)
    loaded = load_dataset(tmp_path / "x.csv", fill=fill)
    value = loaded["c1"].iloc[3]
    if expected == "previous":
        assert value == pytest.approx(frame["c1"].iloc[2])
    elif expected == "mean":
        assert value == pytest.approx((frame["c1"].iloc[2] + frame["c1"].iloc[4]) / 2)
    else:
        assert value == 0.0
    with pytest.raises(DataValidationError, match="fill='magic' is not supported"):
        load_dataset(tmp_path / "x.csv", fill="magic")


def test_missing_file_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="No file at"):
        load_dataset(tmp_path / "nope.csv")


def test_empty_and_unreadable_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match="empty.csv is empty: expected a date column"):
        load_dataset(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("date,a\n")
    with pytest.raises(DataValidationError, match="no data rows"):
        load_dataset(tmp_path / "header.csv")


def test_a_headerless_csv_is_refused_by_default_and_read_whole_with_no_header(tmp_path):
    frame = write_series(tmp_path / "h.csv", rows=50, header=False)
    with pytest.raises(DataValidationError, match="no header.*header=False"):
        load_dataset(tmp_path / "h.csv")
    loaded = load_dataset(tmp_path / "h.csv", header=False)
    assert len(loaded) == 50 and list(loaded.columns) == ["x1", "x2", "x3"]  # x0 held the dates
    np.testing.assert_allclose(loaded.to_numpy(), frame.drop(columns="date").to_numpy())
    assert loaded.index[0] == frame["date"].iloc[0]  # the first row is data, not lost to the header


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_delimiter_is_sniffed_or_given(tmp_path, sep):
    frame = write_series(tmp_path / "s.csv", rows=40, sep=sep)
    for given in (None, sep):
        loaded = load_dataset(tmp_path / "s.csv", sep=given)
        assert list(loaded.columns) == ["c0", "c1", "OT"] and len(loaded) == 40
        np.testing.assert_allclose(loaded.to_numpy(), frame.drop(columns="date").to_numpy())


def test_a_european_csv_with_day_first_dates_and_decimal_commas_reads_as_written(tmp_path):
    """31/01/2020 is day first and 0,5 is a half: format='mixed' read day-first dates month first wherever the day
    was 12 or less (the file seemed to go back in time), and decimal commas were refused as text."""
    hours = pd.date_range("2020-01-01", periods=24 * 40, freq="h")
    values = np.random.default_rng(0).standard_normal((len(hours), 2))
    frame = pd.DataFrame({"date": hours.strftime("%d/%m/%Y %H:%M"), "load": values[:, 0], "temp": values[:, 1]})
    frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    loaded = load_dataset(tmp_path / "eu.csv")
    assert loaded.index.equals(pd.DatetimeIndex(hours, name="date"))
    np.testing.assert_allclose(loaded.to_numpy(), values)
    month_first = frame.assign(date=hours.strftime("%m/%d/%Y %H:%M"))  # US dates still read month first
    month_first.to_csv(tmp_path / "us.csv", index=False)
    assert load_dataset(tmp_path / "us.csv").index.equals(pd.DatetimeIndex(hours, name="date"))
    monthly = pd.DataFrame({"date": pd.date_range("2018-01-01", periods=36, freq="MS").strftime("%d/%m/%Y")})
    monthly.assign(y=np.arange(36.0)).to_csv(tmp_path / "monthly.csv", sep=";", index=False)  # in order either way
    assert load_dataset(tmp_path / "monthly.csv").index[1] == pd.Timestamp("2018-02-01")  # the evenly spaced one
    thousands = "date\tsales\n" + "".join(f"2020-01-{d:02d}\t{v}\n" for d, v in enumerate(["999", "1,234"], 1))
    (tmp_path / "us.tsv").write_text(thousands)  # 1,234 may be a thousand: refused, not read as 1.234
    with pytest.raises(DataValidationError, match="non-numeric column"):
        load_dataset(tmp_path / "us.tsv")
    sales = pd.DataFrame({"date": hours[:4].strftime("%d.%m.%Y %H:%M"), "sales": ["900,00", "1.000,50", "2,5", "0"]})
    sales.to_csv(tmp_path / "sales.csv", sep=";", index=False)  # dots grouping thousands beside decimal commas
    assert load_dataset(tmp_path / "sales.csv")["sales"].tolist() == [900.0, 1000.5, 2.5, 0.0]
    days = pd.date_range("2020-01-01", periods=4, freq="D").strftime("%d.%m.%Y")
    sales.assign(date=days).to_csv(tmp_path / "daily.csv", sep=";", index=False)
    assert load_dataset(tmp_path / "daily.csv").index[1] == pd.Timestamp("2020-01-02")  # 02.01.2020 is no number
    logger = frame.assign(Time=hours.strftime("%H:%M"), date=hours.strftime("%d.%m.%Y"))[["date", "Time", "load"]]
    logger.to_csv(tmp_path / "logger.csv", sep=";", decimal=",", index=False)  # the time of day in a column of its own
    assert load_dataset(tmp_path / "logger.csv").index.equals(pd.DatetimeIndex(hours, name="date"))
    stamped = frame.assign(
        date=hours.strftime("%Y-%m-%d %H:%M"), hour=(hours + pd.Timedelta(hours=1)).strftime("%H:%M")
    )
    stamped.to_csv(tmp_path / "stamped.csv", index=False)  # the timestamps have their time: hour is a value
    with pytest.raises(DataValidationError, match="non-numeric column.*'hour'"):
        load_dataset(tmp_path / "stamped.csv")
    frame.to_csv(tmp_path / "bare.csv", sep=";", decimal=",", index=False, header=False)
    for sep in (";", None):  # sniffed as ;-separated, though its decimal commas split every line alike too
        with pytest.raises(DataValidationError, match="looks like data"):  # a headerless file keeps its first row
            load_dataset(tmp_path / "bare.csv", sep=sep)
    bare = load_dataset(tmp_path / "bare.csv", header=False)
    assert bare.index.equals(pd.DatetimeIndex(hours, name="date")) and np.allclose(bare.to_numpy(), values)
    shuffled = frame.sample(frac=1.0, random_state=0)  # out of order either way: still refused, rows named
    shuffled.to_csv(tmp_path / "shuffled.csv", sep=";", decimal=",", index=False)
    with pytest.raises(DataValidationError, match="Sort the rows"):
        load_dataset(tmp_path / "shuffled.csv")


def test_timestamps_across_a_daylight_saving_change_are_read_as_utc(tmp_path):
    """Offsets +01:00 then +02:00 (Berlin in March): one evenly spaced axis in UTC, said by a warning (pandas
    refused the mixed offsets with a traceback)."""
    from titans_ts.data.timestamps import TimeZoneWarning

    local = pd.date_range("2020-03-28", periods=72, freq="h", tz="Europe/Berlin")
    path = _with_dates(tmp_path, local)
    with pytest.warns(TimeZoneWarning, match="read as UTC"):
        loaded = load_dataset(path)
    assert loaded.index.equals(pd.DatetimeIndex(local.tz_convert("UTC"), name="date"))
    assert (loaded.index.to_series().diff().iloc[1:] == pd.Timedelta(hours=1)).all()


def test_daily_timestamps_across_a_daylight_saving_change_are_read_on_the_wall_clock(tmp_path):
    """Midnight each day in Berlin is 23 hours apart in UTC across the March change: the file was refused as
    uneven; on the wall clock the days are even, and the forecast is dated so."""
    from titans_ts.data.timestamps import TimeZoneWarning

    local = pd.date_range("2020-03-20", periods=20, freq="D", tz="Europe/Berlin")
    path = _with_dates(tmp_path, local)
    with pytest.warns(TimeZoneWarning, match="wall clock"):
        loaded = load_dataset(path)
    assert loaded.index.equals(pd.DatetimeIndex(local.tz_localize(None), name="date"))
    np.testing.assert_array_equal(loaded["a"].to_numpy(), np.arange(20.0))
    path = _with_dates(tmp_path, local.delete(12))  # a missing day: a gap on the wall clock, filled there
    with pytest.warns(TimeZoneWarning, match="wall clock"):
        filled = load_dataset(path, fill="interpolate")
    assert filled.index.equals(pd.DatetimeIndex(local.tz_localize(None), name="date"))


def _with_dates(tmp_path, dates):
    frame = pd.DataFrame({"date": dates, "a": np.arange(len(dates), dtype=float)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


def test_gaps_in_the_timestamps_are_an_error_unless_filled(tmp_path):
    hours = pd.date_range("2020-01-01", periods=300, freq="h")
    path = _with_dates(tmp_path, hours.delete(range(100, 200)))  # 100 hourly rows missing
    with pytest.raises(DataValidationError, match=r"not evenly spaced.*1 step\(s\) differ.*rows 100-101.*--fill"):
        load_dataset(path)
    filled = load_dataset(path, fill="interpolate")
    assert len(filled) == 300 and (filled.index == hours).all()
    np.testing.assert_allclose(filled["a"].iloc[99:201].to_numpy(), np.linspace(99, 100, 102))


def test_a_fill_says_how_many_timestamps_it_inserted_and_values_it_filled(tmp_path):
    """A user who passes --fill sees how much of the series is made up, not a silent 600 rows where the file
    held 596."""
    from titans_ts.data.validation import FilledValuesWarning

    hours = pd.date_range("2020-01-01", periods=300, freq="h")
    frame = pd.DataFrame({"date": hours, "a": np.arange(300.0), "b": np.arange(300.0)})
    frame.loc[[7, 9], "b"] = [np.nan, np.inf]
    frame.drop(index=range(100, 103)).to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(FilledValuesWarning) as said:
        filled = load_dataset(tmp_path / "t.csv", fill="ffill")
    assert len(said) == 1 and len(filled) == 300 and np.isfinite(filled.to_numpy()).all()
    message = str(said[0].message)
    assert "t.csv: the ffill fill inserted 3 missing timestamp(s) (2020-01-05 04:00:00, " in message
    assert "filled 2 missing or infinite value(s) (at 2020-01-01 07:00:00 'b', at 2020-01-01 09:00:00 'b')" in message
    assert "5 of the 300 rows (1.7%) hold filled-in values" in message
    with warnings.catch_warnings():  # a file with nothing to fill says nothing
        warnings.simplefilter("error", FilledValuesWarning)
        load_dataset(_with_dates(tmp_path, hours), fill="ffill")


def test_repeated_or_unordered_or_off_grid_timestamps_are_errors(tmp_path):
    hours = pd.date_range("2020-01-01", periods=50, freq="h")
    with pytest.raises(DataValidationError, match="repeat or go back.*row 11"):
        load_dataset(_with_dates(tmp_path, hours.insert(10, hours[9])))
    shifted = hours.delete(20).insert(20, hours[20] + pd.Timedelta(minutes=7))
    with pytest.raises(DataValidationError, match="off that grid"):
        load_dataset(_with_dates(tmp_path, shifted), fill="ffill")


def test_a_newest_first_file_is_put_in_time_order_with_a_warning(tmp_path):
    from titans_ts.data.validation import TimeOrderWarning

    frame = write_series(tmp_path / "oldest_first.csv", rows=120)
    frame.iloc[::-1].to_csv(tmp_path / "newest_first.csv", index=False)
    with pytest.warns(TimeOrderWarning, match=r"newest_first.csv: the rows run newest first.*put in time order"):
        reversed_ = load_dataset(tmp_path / "newest_first.csv")
    assert reversed_.index.is_monotonic_increasing and reversed_.index[0] == frame["date"].iloc[0]
    # what the model is given (and so what it forecasts) is the same as for the file in time order
    pd.testing.assert_frame_equal(reversed_, load_dataset(tmp_path / "oldest_first.csv"))
    # sorted before the gap check: a newest-first file with a gap is filled like any other
    hours = pd.date_range("2020-01-01", periods=50, freq="h").delete(range(20, 25))
    with pytest.warns(TimeOrderWarning):
        filled = load_dataset(_with_dates(tmp_path, hours[::-1]), fill="interpolate")
    assert len(filled) == 50 and filled.index.is_monotonic_increasing


def test_a_shuffled_file_is_refused_with_the_fix_named(tmp_path):
    hours = pd.date_range("2020-01-01", periods=50, freq="h")
    shuffled = hours[np.random.default_rng(0).permutation(len(hours))]
    with pytest.raises(DataValidationError, match="go back in time.*Sort the rows"):
        load_dataset(_with_dates(tmp_path, shuffled))
    swapped = hours[[*range(10), 11, 10, *range(12, 50)]]  # two neighbours swapped: neither order holds
    with pytest.raises(DataValidationError, match=r"go back in time: row 12 .*Sort the rows"):
        load_dataset(_with_dates(tmp_path, swapped))


def test_a_newest_first_file_that_is_refused_names_its_own_rows_and_is_not_said_to_be_reordered(tmp_path):
    hours = pd.date_range("2020-01-01", periods=6, freq="h")[::-1]
    stamps = hours.insert(1, hours[0])  # newest first, the newest stamp written twice (rows 1 and 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "put in time order" warning for a file that is then refused
        with pytest.raises(DataValidationError, match=r"repeat or go back in time: row 2 "):
            load_dataset(_with_dates(tmp_path, stamps))


def test_a_dataframe_given_newest_first_is_put_in_time_order_and_a_shuffled_one_refused():
    from titans_ts.data import validate_frame
    from titans_ts.data.validation import TimeOrderWarning

    hours = pd.date_range("2020-01-01", periods=30, freq="h")
    frame = pd.DataFrame({"y": np.arange(30.0)}, index=hours)
    with pytest.warns(TimeOrderWarning, match="my frame: the rows run newest first"):
        ordered = validate_frame(frame.iloc[::-1], source="my frame")
    pd.testing.assert_frame_equal(ordered, validate_frame(frame))
    shuffled = frame.iloc[np.random.default_rng(0).permutation(30)]
    with pytest.raises(DataValidationError, match="my frame: .*go back in time.*Sort the rows"):
        validate_frame(shuffled, source="my frame")


def _long_table(path):
    """Two series, b starting 2 hours later and missing one stamp inside; a third ending early."""
    hours = pd.date_range("2021-03-01", periods=10, freq="h")
    rows = [("a", t, float(i)) for i, t in enumerate(hours)]
    rows += [("b", t, 100.0 + i) for i, t in enumerate(hours) if i >= 2 and i != 5]
    rows += [("c", t, -float(i)) for i, t in enumerate(hours) if i <= 8]
    frame = pd.DataFrame(rows, columns=["id", "ts", "y"]).sample(frac=1.0, random_state=0)  # any row order
    frame.to_csv(path, index=False)
    return hours


def test_long_format_becomes_one_column_per_series_on_the_shared_span(tmp_path):
    from titans_ts.data.long_format import PanelSpanWarning

    hours = _long_table(tmp_path / "long.csv")
    with pytest.warns(PanelSpanWarning, match="'b' starts last, 'c' ends first.*dropped 3"):
        with pytest.raises(
            DataValidationError, match=rf"missing.*series \['b'\] .*at {hours[5]} series 'b'"
        ):  # by time
            load_dataset(tmp_path / "long.csv", long=("id", "ts", "y"))
    with pytest.warns(PanelSpanWarning):
        panel = load_dataset(tmp_path / "long.csv", long=("id", "ts", "y"), fill="interpolate")
    assert list(panel.columns) == ["a", "b", "c"] and (panel.index == hours[2:9]).all()
    assert panel["a"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert panel.loc[hours[5], "b"] == pytest.approx(105.0)  # interpolated between 104 and 106
    # the series asked for alone: another's span cuts none of theirs (a model's predict read a, c on b's span)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PanelSpanWarning)
        asked = load_dataset(tmp_path / "long.csv", long=("id", "ts", "y"), columns=["a"])
    assert list(asked.columns) == ["a"] and (asked.index == hours).all()
    with pytest.warns(PanelSpanWarning, match="'c' ends first"):
        assert (
            load_dataset(tmp_path / "long.csv", long=("id", "ts", "y"), columns=["c", "a"]).index == hours[:9]
        ).all()


def test_a_long_tables_other_columns_are_said_to_go_unread(tmp_path):
    """A covariate beside (id, time, value), a price or a temperature, was dropped without a word."""
    from titans_ts.errors import UnreadInputsWarning

    hours = pd.date_range("2021-03-01", periods=6, freq="h")
    rows = [(name, t, float(i), 10.0 - i, "x") for name in ("a", "b") for i, t in enumerate(hours)]
    pd.DataFrame(rows, columns=["id", "ts", "y", "price", "note"]).to_csv(tmp_path / "priced.csv", index=False)
    with pytest.warns(UnreadInputsWarning, match=r"2 column\(s\) of the long table are not read, \['price', 'note'\]"):
        panel = load_dataset(tmp_path / "priced.csv", long=("id", "ts", "y"))
    assert list(panel.columns) == ["a", "b"] and panel["a"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    _long_table(tmp_path / "plain.csv")
    with warnings.catch_warnings():  # id, time and value alone: nothing to say
        warnings.simplefilter("error", UnreadInputsWarning)
        load_dataset(tmp_path / "plain.csv", long=("id", "ts", "y"), columns=["a"])


def test_long_format_whole_number_times_are_dates_or_unix_time_as_in_a_wide_file(tmp_path):
    """Epoch seconds in a long table's time column were kept as steps (the forecast numbered 1.6 billion on)."""
    hours = pd.date_range("2023-01-01", periods=6, freq="h")
    epoch = np.asarray((hours - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))
    table = pd.DataFrame({"id": ["a"] * 6 + ["b"] * 6, "ts": np.tile(epoch, 2), "y": np.arange(12.0)})
    table.to_csv(tmp_path / "unix.csv", index=False)
    panel = load_dataset(tmp_path / "unix.csv", long=("id", "ts", "y"))
    assert panel.index.equals(pd.DatetimeIndex(hours, name="ts")) and panel["b"].tolist() == [6.0, 7, 8, 9, 10, 11]
    table.assign(ts=np.tile([20230101, 20230102, 20230103, 20230104, 20230105, 20230106], 2)).to_csv(
        tmp_path / "written.csv", index=False
    )
    written = load_dataset(tmp_path / "written.csv", long=("id", "ts", "y"))
    assert written.index[0] == pd.Timestamp("2023-01-01") and written.index[-1] == pd.Timestamp("2023-01-06")
    table.assign(ts=np.tile(np.arange(10, 16), 2)).to_csv(tmp_path / "steps.csv", index=False)
    assert load_dataset(tmp_path / "steps.csv", long=("id", "ts", "y")).index.tolist() == list(range(10, 16))


def test_long_format_errors_name_the_problem(tmp_path):
    _long_table(tmp_path / "long.csv")
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['value'\].*--target"):
        load_dataset(tmp_path / "long.csv", long=("id", "ts", "value"))
    frame = pd.read_csv(tmp_path / "long.csv")
    pd.concat([frame, frame.iloc[:1]]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataValidationError, match=r"repeat an \(id, ts\) pair"):
        load_dataset(tmp_path / "dup.csv", long=("id", "ts", "y"))


def _panel(path, starts, ends, ids=("s1", "s2", "s3")):
    """A long table (id, ts, y): series i has the hours starts[i] .. ends[i] of a 12-hour grid."""
    hours = pd.date_range("2022-01-01", periods=12, freq="h")
    rows = [
        (name, t, float(i))
        for name, a, b in zip(ids, starts, ends, strict=True)
        for i, t in enumerate(hours[a : b + 1])
    ]
    pd.DataFrame(rows, columns=["id", "ts", "y"]).to_csv(path, index=False)
    return hours


@pytest.mark.parametrize(
    "starts, ends, said",
    [
        ((0, 0, 3), (11, 11, 11), r"\('s3' starts last\); dropped 3"),  # all end together: none "ends first"
        ((0, 0, 0), (11, 9, 11), r"\('s2' ends first\); dropped 2"),
        ((0, 2, 2), (11, 11, 11), r"\('s2', 's3' start last\); dropped 2"),  # a tie among those that set it
        ((0, 2, 0), (10, 11, 11), r"\('s2' starts last, 's1' ends first\); dropped 3"),
    ],
)
def test_the_span_warning_names_a_series_only_where_it_starts_later_or_ends_earlier_than_another(
    tmp_path, starts, ends, said
):
    """All series ending together, the warning named one at random as ending first ('s1')."""
    from titans_ts.data.long_format import PanelSpanWarning

    _panel(tmp_path / "panel.csv", starts, ends)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(tmp_path / "panel.csv", long=("id", "ts", "y"))
    [warning] = [w for w in caught if issubclass(w.category, PanelSpanWarning)]
    assert re.search(said, str(warning.message)), str(warning.message)


def test_a_long_tables_refusals_name_series_not_columns(tmp_path):
    """A long file lacking a series was said to have "no column(s) ['s3'] ... its columns are ['s1', 's2']"."""
    from titans_ts.errors import MissingColumnsError

    hours = _panel(tmp_path / "two.csv", (0, 0), (11, 11), ids=("s1", "s2"))
    with pytest.raises(MissingColumnsError) as refused:
        load_dataset(tmp_path / "two.csv", long=("id", "ts", "y"), columns=["s1", "s3"])
    message = str(refused.value)
    assert "has no series ['s3'] (of the series to read, ['s1', 's3']) in its id column 'id'" in message
    assert "its series are ['s1', 's2']" in message and "column(s)" not in message
    table = pd.read_csv(tmp_path / "two.csv")
    table["y"] = table["y"].astype(object)
    table.loc[4, "y"] = "a lot"  # text in the value column: named with its series and time, not as a column of text
    table.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataValidationError, match=rf"value column 'y' has 1 value\(s\) that are not numbers: row 5 "
                       rf"\('s1' at {hours[4]}: 'a lot'\)"):  # fmt: skip
        load_dataset(tmp_path / "text.csv", long=("id", "ts", "y"))


def test_a_long_table_read_as_a_wide_one_is_told_how_to_read_it(tmp_path):
    """The error said only "date column 'id' has ... value(s) that are not timestamps ... --date-column"."""
    _panel(tmp_path / "long.csv", (0, 0, 0), (11, 11, 11))
    with pytest.raises(DataValidationError) as refused:
        load_dataset(tmp_path / "long.csv")
    message = str(refused.value)
    assert "date column 'id' has 36 value(s) that are not timestamps" in message  # the message as it was, then:
    assert "long-format table (one row per series and time)" in message
    assert "long=('id', 'ts', 'y') (CLI: --id-col id --time-col ts --target y)" in message
    # other columns, and a date column that is read (its stamps repeat): the hint names them
    table = pd.read_csv(tmp_path / "long.csv").rename(columns={"id": "unique_id", "ts": "date", "y": "load"})
    table.to_csv(tmp_path / "renamed.csv", index=False)
    with pytest.raises(DataValidationError, match=r"repeat or go back in time.*long=\('unique_id', 'date', 'load'\)"):
        load_dataset(tmp_path / "renamed.csv", columns=["load"])
    # a wide table with a text column: the message as it was
    frame = write_series(tmp_path / "wide.csv", rows=40)
    frame.assign(site=["north", "south"] * 20).to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(DataValidationError) as wide:
        load_dataset(tmp_path / "wide.csv")
    assert "non-numeric column(s) 'site'" in str(wide.value) and "long-format" not in str(wide.value)
    # ... also with one timestamp repeated (a clock set back): a repeat is not a long table's
    stamps = frame["date"].astype(str).tolist()
    repeated_once = frame.assign(date=stamps[:20] + stamps[19:39], site=["north", "south"] * 20)
    repeated_once.to_csv(tmp_path / "w2.csv", index=False)
    with pytest.raises(DataValidationError) as repeated:
        load_dataset(tmp_path / "w2.csv", columns=["c0", "OT"])
    assert "long-format" not in str(repeated.value)
    # M4's ids (M1, M2, ...) read as dates by dateutil: an id column all the same, not a time column
    m4 = pd.read_csv(tmp_path / "long.csv").assign(id=lambda t: t["id"].map({"s1": "M1", "s2": "M2", "s3": "M3"}))
    m4.rename(columns={"id": "series"}).to_csv(tmp_path / "m4.csv", index=False)
    with pytest.raises(DataValidationError, match=r"long=\('series', 'ts', 'y'\)"):
        load_dataset(tmp_path / "m4.csv")


def test_the_time_column_named_among_the_columns_to_read_is_said_to_be_the_index(tmp_path):
    """--columns date,a said "has no column(s) ['date']" of a file that has one: its time column."""
    from titans_ts.errors import MissingColumnsError

    write_series(tmp_path / "s.csv", rows=40)
    with pytest.raises(MissingColumnsError) as alone:
        load_dataset(tmp_path / "s.csv", columns=["date", "c0"])
    assert str(alone.value).endswith(
        "'date' is its time column (the index), which is always read: leave it out of the columns to read "
        "(columns=, CLI: --columns); its other columns are ['c0', 'c1', 'OT']."
    )
    assert "has no column" not in str(alone.value)
    with pytest.raises(MissingColumnsError) as both:
        load_dataset(tmp_path / "s.csv", columns=["date", "zz"])
    assert "has no column(s) ['zz'] (of the columns to read, ['date', 'zz'])" in str(both.value)
    assert "'date' is its time column (the index)" in str(both.value)


def test_parquet_with_a_date_column_or_a_date_index(tmp_path):
    frame = write_series(tmp_path / "s.csv", rows=30)
    frame.to_parquet(tmp_path / "columns.parquet", index=False)
    frame.set_index("date").to_parquet(tmp_path / "indexed.parquet")
    for name in ("columns.parquet", "indexed.parquet"):
        loaded = load_dataset(tmp_path / name)
        assert list(loaded.columns) == ["c0", "c1", "OT"] and (loaded.index == frame["date"]).all()
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="cannot be read as parquet"):
        load_dataset(tmp_path / "bad.parquet")


def test_json_feather_and_compressed_text_tables_load_and_other_files_are_named_as_files(tmp_path, monkeypatch):
    """A .json, .feather or bare my.csv.bz2 was looked up as a registered name: "Unknown dataset 'x.json'"."""
    frame = write_series(tmp_path / "s.csv", rows=30)
    frame.to_json(tmp_path / "records.json", orient="records", date_format="iso")
    frame.to_json(tmp_path / "lines.jsonl", orient="records", date_format="iso", lines=True)
    frame.set_index("date").to_json(tmp_path / "by_column.json", date_format="iso")  # the dates as its index
    frame.to_feather(tmp_path / "table.feather")
    frame.to_csv(tmp_path / "s.csv.bz2", index=False)
    monkeypatch.chdir(tmp_path)  # bare names, as a user in the data's folder types them
    for name in ("records.json", "lines.jsonl", "by_column.json", "table.feather", "s.csv.bz2"):
        loaded = load_dataset(name)
        assert list(loaded.columns) == ["c0", "c1", "OT"] and (loaded.index == frame["date"]).all(), name
        np.testing.assert_allclose(loaded.to_numpy(), frame[["c0", "c1", "OT"]].to_numpy())
    frame.set_index("date").iloc[:, :2].assign(OT=frame["OT"].to_numpy()).to_json(tmp_path / "dated.json")
    frame.to_json(tmp_path / "default.json")  # pandas' default: columns, keyed by row number (not data)
    frame.rename(columns={"date": "ds"}).to_json(tmp_path / "ds.json", orient="records")  # dates as epoch ms
    frame.to_csv(tmp_path / "semi.csv.bz2", sep=";", decimal=",", index=False)  # sniffed through bz2
    frame.to_csv(tmp_path / "tab.tsv.xz", sep="\t", index=False)
    frame.to_csv(tmp_path / "mydata", index=False)  # a bare name with no suffix: a file, not a registered name
    frame.iloc[10:].to_parquet(tmp_path / "filtered.parquet", index=True)  # row numbers 10.. kept as an index
    for name in ("dated.json", "default.json", "ds.json", "semi.csv.bz2", "tab.tsv.xz", "mydata", "filtered.parquet"):
        loaded = load_dataset(name)
        assert list(loaded.columns) == ["c0", "c1", "OT"], name
        assert isinstance(loaded.index, pd.DatetimeIndex) and loaded.index[-1] == frame["date"].iloc[-1], name
    (tmp_path / "store.h5").write_bytes(b"HDF")
    for name in ("store.h5", str(tmp_path / "store.h5")):
        with pytest.raises(DataValidationError, match=r"store.h5 is not a table titans-ts reads"):
            load_dataset(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_dataset("~/records.json").shape == (30, 3)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "one.json").write_text('{"date": "2020-01-01", "y": 1}')  # one record, not a table
    for name in ("bad.json", "one.json"):
        with pytest.raises(DataValidationError, match=rf"{name}: cannot be read as JSON .* a list of records"):
            load_dataset(name)

    def no_openpyxl(*args, **kwargs):
        raise ImportError("Missing optional dependency 'openpyxl'.")

    class Book:  # a workbook of two sheets (openpyxl is not installed here: pandas' reading is stood in for)
        sheet_names = ["readings", "notes"]

        def __init__(self, path):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(pd, "read_excel", lambda path, header=0: frame.copy())
    monkeypatch.setattr(pd, "ExcelFile", Book)
    (tmp_path / "book.xlsx").write_bytes(b"PK")
    with pytest.warns(UserWarning, match=r"book.xlsx has 2 sheets \('readings', 'notes'\): the first, 'readings'"):
        assert list(load_dataset("book.xlsx").columns) == ["c0", "c1", "OT"]
    monkeypatch.setattr(pd, "read_excel", no_openpyxl)
    with pytest.raises(DataValidationError, match=r"reading Excel needs openpyxl \(pip install openpyxl\)"):
        load_dataset("book.xlsx")


@pytest.mark.parametrize(
    "dates, step",
    [
        (pd.bdate_range("2020-01-01", periods=120), "1 business day"),  # weekends are not gaps
        (pd.bdate_range("2020-01-01 16:00", periods=120, normalize=False), "1 business day"),  # each at the close
        (pd.date_range("2000-01-01", periods=60, freq="MS"), "1 month"),  # 28 to 31 days apart
        (pd.date_range("2000-01-31", periods=60, freq="ME"), "1 month"),
        (pd.date_range("2000-02-01", periods=40, freq="QS-FEB"), "1 quarter"),
        (pd.date_range("1950-12-31", periods=40, freq="YE"), "1 year"),
        (pd.date_range("2020-01-01", periods=40, freq="28D"), "28 days"),  # four-weekly: a fixed step
        (pd.date_range("2000-01-01", periods=60, freq="MS") + pd.Timedelta(days=14), "1 month"),  # on the 15th
        (pd.date_range("2000-02-01", periods=40, freq="QS-FEB") + pd.Timedelta(days=9, hours=6), "1 quarter"),
    ],
)
def test_calendar_data_with_a_missing_row_is_filled_on_its_calendar(tmp_path, dates, step):
    """A holiday in business-day data, a missing month: the gap is named on the data's calendar and --fill
    inserts only the calendar's missing rows (filling business days invented weekends, and monthly data could
    not be filled at all)."""
    values = np.arange(len(dates), dtype=float)
    pd.DataFrame({"date": dates, "y": values}).to_csv(tmp_path / "whole.csv", index=False)
    assert load_dataset(tmp_path / "whole.csv").index.equals(pd.DatetimeIndex(dates, name="date"))  # no gap: as is
    kept = np.delete(np.arange(len(dates)), [7, 8])  # rows 8 and 9 missing
    pd.DataFrame({"date": dates[kept], "y": values[kept]}).to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(
        DataValidationError, match=rf"the usual step is {step}, but 1 step\(s\) differ, e\.g\. rows 7-8"
    ):
        load_dataset(tmp_path / "gap.csv")
    filled = load_dataset(tmp_path / "gap.csv", fill="interpolate")
    assert filled.index.equals(pd.DatetimeIndex(dates, name="date"))
    np.testing.assert_allclose(filled["y"].to_numpy(), values)  # a straight line, interpolated back


def test_whole_number_times_are_unix_time_or_steps_and_pandas_row_numbers_are_not_a_series(tmp_path):
    """pd.to_datetime read whole numbers as nanoseconds after 1970: epoch seconds and step numbers became
    1970-01-01 00:00:01.67; and the row numbers df.to_csv writes by default became a series to forecast."""
    hours = pd.date_range("2023-01-01", periods=50, freq="h")
    values = np.arange(50.0)
    seconds = (hours - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    for name, stamps in (("epoch_s.csv", seconds), ("epoch_ms.csv", seconds * 1000), ("epoch_ns.csv", seconds * 10**9)):
        pd.DataFrame({"timestamp": stamps, "y": values}).to_csv(tmp_path / name, index=False)
        assert load_dataset(tmp_path / name).index.equals(pd.DatetimeIndex(hours, name="timestamp"))
    days = pd.date_range("2023-01-01", periods=50, freq="D")
    for written, stamps in (
        ("%Y%m%d", days),
        ("%Y%m%d%H", hours),
        ("%Y%m", pd.date_range("2020", periods=50, freq="MS")),
    ):
        as_number = pd.DataFrame({"date": stamps.strftime(written).astype(np.int64), "y": values})
        as_number.to_csv(tmp_path / "number.csv", index=False)  # 20230101, 2023010100, 202001: dates
        assert load_dataset(tmp_path / "number.csv").index.equals(pd.DatetimeIndex(stamps, name="date"))
    pd.DataFrame({"time": np.arange(50) + 7, "y": values}).to_csv(tmp_path / "steps.csv", index=False)
    steps = load_dataset(tmp_path / "steps.csv")
    assert steps.index.equals(pd.RangeIndex(7, 57, name="time")) and list(steps.columns) == ["y"]
    pd.DataFrame({"time": np.arange(50) * 5 + 1990, "y": values}).to_csv(tmp_path / "every5.csv", index=False)
    assert load_dataset(tmp_path / "every5.csv").index.equals(pd.RangeIndex(1990, 2240, 5, name="time"))  # years
    skips = np.r_[np.arange(25), np.arange(26, 51)]
    pd.DataFrame({"time": skips, "y": values}).to_csv(tmp_path / "skips.csv", index=False)
    with pytest.raises(DataValidationError, match=r"not count up by a constant step \(rows 25-26: 24 -> 26\)"):
        load_dataset(tmp_path / "skips.csv")
    pd.DataFrame({"time": np.arange(50)[::-1], "y": values}).to_csv(tmp_path / "down.csv", index=False)
    with pytest.raises(DataValidationError, match=r"constant step \(rows 1-2: 49 -> 48\)"):
        load_dataset(tmp_path / "down.csv")
    pd.DataFrame({"time": values / 2, "y": values}).to_csv(tmp_path / "halves.csv", index=False)
    with pytest.raises(DataValidationError, match=r"'time' holds numbers that are neither timestamps nor whole"):
        load_dataset(tmp_path / "halves.csv")
    pd.DataFrame({"a": values, "b": values}).to_csv(tmp_path / "numbered.csv")  # pandas' default: index=True
    assert list(load_dataset(tmp_path / "numbered.csv").columns) == ["a", "b"]
    pd.DataFrame({"a": values}, index=hours).to_csv(tmp_path / "dated.csv")  # an unnamed DatetimeIndex
    assert load_dataset(tmp_path / "dated.csv").index.equals(pd.DatetimeIndex(hours, name="date"))


def test_a_gzip_file_cut_short_is_named_so(tmp_path):
    """A truncated .csv.gz raised gzip's EOFError, which the CLI printed as "Aborted." (exit 1)."""
    import gzip

    from titans_ts.data import load_dataset
    from titans_ts.errors import DataValidationError

    whole = "date,a\n" + "".join(f"2020-01-01 {h:02d}:00,{h}.5\n" for h in range(24)) * 1
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(whole.encode())[:-12])  # the stream's end and its checksum missing
    with pytest.raises(DataValidationError, match="cut short"):
        load_dataset(path)


def test_rows_ending_with_a_separator_keep_their_columns_under_their_header(tmp_path):
    """`2020-01-01 00:00,1.5,2.5,` under `date,x,y`: pandas took the dates as the row index and read x's values
    as the dates."""
    hours = pd.date_range("2020-01-01", periods=30, freq="h")
    lines = ["date,x,y", *(f"{t},{i},{2 * i}," for i, t in enumerate(hours))]
    (tmp_path / "trailing.csv").write_text("\n".join(lines) + "\n")
    frame = load_dataset(tmp_path / "trailing.csv")
    assert list(frame.columns) == ["x", "y"] and frame.index.equals(pd.DatetimeIndex(hours, name="date"))
    assert frame["y"].tolist() == [2.0 * i for i in range(30)]
    stepped = ["step,x,y", *(f"{i},{i / 10},{i / 5}," for i in range(30))]  # pandas 3 read 0, 1, .. as a RangeIndex
    (tmp_path / "stepped.csv").write_text("\n".join(stepped) + "\n")
    frame = load_dataset(tmp_path / "stepped.csv")
    assert frame["x"].tolist() == [i / 10 for i in range(30)] and frame["y"].tolist() == [i / 5 for i in range(30)]
    lines[5] += "7"  # the file's row 6 (row 1: the header)
    (tmp_path / "extra.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"extra.csv: row 6 has more fields than the header"):
        load_dataset(tmp_path / "extra.csv")
