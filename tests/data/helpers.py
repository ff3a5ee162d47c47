import numpy as np
import pandas as pd


def write_series(path, rows=300, columns=3, freq="h", seed=0, **csv_kwargs):
    """A random-walk CSV with a `date` column and `columns` numeric columns (last one named OT)."""
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(columns - 1)] + ["OT"]
    frame = pd.DataFrame(rng.normal(size=(rows, columns)).cumsum(axis=0), columns=names)
    frame.insert(0, "date", pd.date_range("2016-07-01 02:00:00", periods=rows, freq=freq))
    frame.to_csv(path, index=False, **csv_kwargs)
    return frame
