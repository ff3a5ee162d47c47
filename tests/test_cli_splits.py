"""`titans-ts splits` reads a file as `titans-ts fit` does: --columns, and --target kept among them."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.ts import app as ts_app

runner = CliRunner()


def _plant(path, rows=500):
    """date, a, b, OT and a text column, site."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)).cumsum(axis=0), columns=["a", "b", "OT"])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="h"))
    frame["site"] = ["north", "south"] * (rows // 2)
    frame.to_csv(path, index=False)


def test_splits_reads_the_columns_fit_reads(tmp_path):
    """A text column made splits fail with advice to use --columns, which splits did not have."""
    _plant(tmp_path / "plant.csv")
    args = ["splits", str(tmp_path / "plant.csv"), "--lookback", "48", "--horizon", "12"]
    refused = runner.invoke(ts_app, args)
    assert refused.exit_code == 2 and "--columns a,b,OT" in refused.stderr  # the advice: its numeric columns ...
    for extra, width in ((["--columns", "a,b"], 2), (["--columns", "a,b", "--target", "OT"], 3)):
        result = runner.invoke(ts_app, [*args, *extra], env={"COLUMNS": "200"})  # ... works
        assert result.exit_code == 0, result.output
        assert f"500 rows x {width} columns" in result.output and "[0, 350)" in result.output
    unknown = runner.invoke(ts_app, [*args, "--columns", "a", "--target", "OT,zz"])
    assert unknown.exit_code == 2 and "has no column(s) ['zz']" in unknown.stderr
    dated = runner.invoke(ts_app, [*args, "--columns", "date,a"])
    assert dated.exit_code == 2 and "'date' is its time column (the index), which is always read" in dated.stderr


def test_describe_splits_takes_columns_and_target(tmp_path):
    from titans_ts.data import describe_splits
    from titans_ts.errors import DataValidationError

    _plant(tmp_path / "plant.csv")
    path = str(tmp_path / "plant.csv")
    assert describe_splits(path, 48, 12, columns=["a"], target="OT")["columns"] == 2  # the target is read too
    assert describe_splits(path, 48, 12, columns=["a", "b"])["columns"] == 2
    pd.read_csv(path).drop(columns="site").to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"target column\(s\) \['zz'\] are not in the data"):
        describe_splits(path, 48, 12, target=["OT", "zz"])  # as fit refuses it
