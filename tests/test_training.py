import logging
import sys

import pytest

from titans_ts.training import tune_cpu_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_allocator_tuning_is_accepted_on_linux():
    assert tune_cpu_allocator() is True


def test_trainer_start_prints_no_lightning_chatter(capsys, caplog):
    from titans_ts.training import make_trainer

    with caplog.at_level(logging.INFO):
        make_trainer(max_epochs=1, monitor="val_loss", patience=1, precision="bf16-mixed", progress=False)
    shown = capsys.readouterr()
    for text in (shown.out, shown.err, caplog.text):
        assert "GPU available" not in text and "Automatic Mixed Precision" not in text


def test_every_run_records_why_it_stopped():
    """A budget that cuts training short is in the result (and a normal stop says which kind it was)."""
    import numpy as np
    import pandas as pd

    from titans_ts import TitansForecaster

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 2)).cumsum(axis=0), columns=["a", "b"])
    tiny = dict(horizon=12, lookback=24, dim=16, layers=1, heads=2, chunk_size=8, progress=False)
    budget = TitansForecaster(**tiny, epochs=100, max_minutes=0.0001).fit(frame)
    assert budget.history_["stop_reason"] == "time_budget" and budget.history_["epochs_run"] < 100
    assert budget.history_["steps"] >= 1 and budget.history_["train_seconds"] > 0
    done = TitansForecaster(**tiny, epochs=1).fit(frame)
    assert done.history_["stop_reason"] == "max_epochs" and done.history_["epochs_run"] == 1
    again = TitansForecaster(**tiny, epochs=1).fit(frame)  # same seed, same machine: the same numbers
    assert again.val_metrics_ == done.val_metrics_ and again.evaluate() == done.evaluate()
    early = TitansForecaster(**tiny, epochs=50, patience=1, lr=0.5).fit(frame)
    assert early.history_["stop_reason"] == "early_stopping" and early.history_["epochs_run"] < 50
