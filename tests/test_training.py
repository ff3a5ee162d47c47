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
