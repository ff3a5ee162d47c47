import logging
import re
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
    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    with caplog.at_level(logging.INFO):  # what Lightning says on Ctrl-C, before our line that says what was kept
        rank_zero_info("\nDetected KeyboardInterrupt, attempting graceful shutdown ...")
    assert "KeyboardInterrupt" not in caplog.text + capsys.readouterr().err


def test_every_run_records_why_it_stopped(capfd, caplog):
    """A budget that cuts training short is in the result (and a normal stop says which kind it was), and
    only there: progress=False prints nothing (Lightning said "`Trainer.fit` stopped: ..." at every end)."""
    import numpy as np
    import pandas as pd

    from titans_ts import TitansForecaster

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 2)).cumsum(axis=0), columns=["a", "b"])
    tiny = dict(horizon=12, lookback=24, dim=16, layers=1, heads=2, chunk_size=8, progress=False)
    budget = TitansForecaster(**tiny, epochs=100, max_minutes=0.0001).fit(frame)
    assert budget.history_["stop_reason"] == "time_budget" and budget.history_["epochs_run"] < 100
    assert budget.history_["steps"] >= 1 and budget.history_["train_seconds"] > 0
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        done = TitansForecaster(**tiny, epochs=1).fit(frame)
    assert done.history_["stop_reason"] == "max_epochs" and done.history_["epochs_run"] == 1
    assert capfd.readouterr() == ("", "") and "stopped" not in caplog.text
    again = TitansForecaster(**tiny, epochs=1).fit(frame)  # same seed, same machine: the same numbers
    assert again.val_metrics_ == done.val_metrics_ and again.evaluate() == done.evaluate()
    early = TitansForecaster(**tiny, epochs=50, patience=1, lr=0.5).fit(frame)
    assert early.history_["stop_reason"] == "early_stopping" and early.history_["epochs_run"] < 50


# --- the shared skeleton: trainer_options, train_and_restore, SummedMetricsModule ---------------------------


def test_trainer_options_are_the_estimators_settings_under_make_trainers_names():
    from genomics.classifier import DNAClassifier
    from titans_ts import TitansForecaster
    from titans_ts.training import trainer_options

    classifier = DNAClassifier(epochs=7, patience=3, progress=False, max_minutes=2.5, precision="32-true")
    classifier.set_params(device="cpu", checkpoint_dir="ck", checkpoint_minutes=4.0, devices=2, num_nodes=1)
    assert trainer_options(classifier, monitor="val_loss", device="cuda") == {
        "max_epochs": 7,
        "patience": 3,
        "progress": False,
        "max_minutes": 2.5,
        "precision": "32-true",
        "device": "cuda",  # an override wins
        "checkpoint_dir": "ck",
        "checkpoint_minutes": 4.0,
        "devices": 2,
        "num_nodes": 1,
        "strategy": "auto",
        "monitor": "val_loss",
    }
    forecaster = TitansForecaster(epochs=5)  # no precision parameter: make_trainer's default stays
    options = trainer_options(forecaster, monitor="val_mse")
    assert "precision" not in options and options["max_epochs"] == 5 and options["monitor"] == "val_mse"
    assert trainer_options({"epochs": 2, "progress": False, "other": 1}, patience=9) == {
        "max_epochs": 2,
        "progress": False,
        "patience": 9,
    }


def _regression_module():
    """A SummedMetricsModule subclass as the domains write them: the forecaster's (MSE, float64 sums)."""
    from titans_ts.forecasting.training import ForecastModule

    return ForecastModule


def _regression_data(n=40, seed=0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=generator)
    return torch.utils.data.TensorDataset(x, y)


def _loader(dataset, batch_size, shuffle=False):
    import torch

    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def test_validation_metrics_are_float64_sums_over_every_example_whatever_the_batches():
    import lightning.pytorch as pl
    import torch

    Regression = _regression_module()
    torch.manual_seed(0)
    module = Regression(torch.nn.Linear(3, 1))
    data = _regression_data(23)  # batches of 5 leave a last batch of 3
    with torch.no_grad():
        error = (module.model(data.tensors[0]) - data.tensors[1]).double()
    logged = []
    for batch_size in (5, 23, 1):
        trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.validate(module, _loader(data, batch_size), verbose=False)
        logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})
    assert logged[0] == logged[1] == logged[2]  # not a mean of batch means
    assert logged[0]["val_mse"] == float(torch.tensor(error.square().mean().item()))  # as logged (float32)
    assert logged[0]["val_mae"] == float(torch.tensor(error.abs().mean().item()))
    seen = []
    module.log_validation = lambda *totals: seen.append(totals)
    module.on_validation_epoch_start()  # an epoch without batches (a rank with none) still reports, with zeros
    module.on_validation_epoch_end()
    assert seen == [(0.0, 0.0, 0.0)]


def test_the_schedule_warms_up_over_the_given_fraction():
    import torch

    from titans_ts.training import warmup_cosine_schedule

    Regression = _regression_module()

    class FakeTrainer:
        estimated_stepping_batches = 100

    for warmup, first in ((0.05, 1 / 5), (0.2, 1 / 20)):
        module = Regression(torch.nn.Linear(3, 1), lr=0.1, weight_decay=0.0, warmup=warmup)
        module.trainer = FakeTrainer()
        configured = module.configure_optimizers()
        optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
        assert isinstance(optimizer, torch.optim.AdamW) and configured["lr_scheduler"]["interval"] == "step"
        assert optimizer.defaults["weight_decay"] == 0.0
        assert optimizer.param_groups[0]["lr"] == 0.1 * first
        reference = warmup_cosine_schedule(torch.optim.SGD([torch.zeros(1)], lr=0.1), 100, warmup)
        for _ in range(30):
            for stepped in (schedule, reference):
                stepped.optimizer.step()
                stepped.step()
        assert optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]


def test_train_and_restore_is_the_loop_it_replaces():
    """One call gives what make_trainer -> fit_interruptible -> best.restore -> run_record gave, and the module
    ends holding the best epoch's weights."""
    import time

    import torch

    from titans_ts.training import (
        fit_interruptible,
        make_trainer,
        run_record,
        seed_everything,
        train_and_restore,
    )

    Regression = _regression_module()
    data, options = _regression_data(), dict(max_epochs=4, monitor="val_mse", patience=4, progress=False)

    def start():
        seed_everything(1)
        # lr=3 overshoots: the best epoch (2) is not the last (3), so restoring the best weights shows
        module = Regression(torch.nn.Linear(3, 1), lr=3.0, weight_decay=0.01)
        return module, _loader(data, 8, shuffle=True), _loader(data, 16)

    module, train, val = start()
    trainer, best = make_trainer(**options, device="cpu")
    started = time.perf_counter()
    fit_interruptible(trainer, module, train, val, best)
    best.restore(module)
    by_hand = run_record(trainer, best, time.perf_counter() - started)

    again, train, val = start()
    record = train_and_restore(again, train, val, checkpoint=None, **options, device="cpu")
    assert record.pop("best") == best.best
    assert record.pop("train_seconds") > 0 and by_hand.pop("train_seconds") > 0
    assert record == by_hand and record["steps"] == 4 * 5 and record["stop_reason"] == "max_epochs"
    assert record["best_epoch"] == 2 and record["epochs_run"] == 4
    restored, expected = again.state_dict(), module.state_dict()
    assert restored.keys() == expected.keys() == best.state.keys()
    assert all(torch.equal(restored[k], expected[k]) and torch.equal(restored[k], best.state[k]) for k in restored)


def test_adamw_is_fused_on_cuda_and_torchs_default_elsewhere():
    """On CUDA one fused kernel updates every parameter (a small model's step is launch-bound there); on the CPU
    the optimizer is torch's default, so CPU results are unchanged."""
    from types import SimpleNamespace

    import torch

    from titans_ts.training.module import fused_on_cuda

    def params(*devices):
        return [SimpleNamespace(device=torch.device(d)) for d in devices]

    assert fused_on_cuda(params("cuda:0", "cuda:0")) == {"fused": True}
    assert fused_on_cuda(params("cpu", "cpu")) == {} and fused_on_cuda(params("cuda:0", "cpu")) == {}
    assert fused_on_cuda([]) == {}
    module = _regression_module()(torch.nn.Linear(3, 1))
    module.trainer = SimpleNamespace(estimated_stepping_batches=10)
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and not optimizer.defaults["fused"]


def test_the_training_loss_is_read_back_as_the_mean_since_the_last_read():
    import warnings

    import torch

    from titans_ts.training.module import SummedMetricsModule

    module = SummedMetricsModule(torch.nn.Linear(1, 1))
    assert module.read_train_loss() is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a Trainer attached only warns
        for loss in (1.0, 2.0, 6.0):
            module.log_train_loss(torch.tensor(loss), batch_size=4)
        assert module.read_train_loss() == 3.0
        assert module.read_train_loss() is None
        module.log_train_loss(torch.tensor(5.0), batch_size=4)
    assert module.read_train_loss() == 5.0


def test_epochs_are_said_as_people_count_them():
    """Records keep Lightning's count from 0; what is printed counts from 1 (a one-epoch run: best epoch 1 of 1)."""
    from titans_ts.training import epoch_number, stop_note

    assert epoch_number(0) == 1 and epoch_number(None) == "-"
    record = {"stop_reason": "time_budget", "epochs_run": 3, "steps": 30, "best_epoch": 1}
    assert "after 3 epochs (30 steps); the best epoch's weights (epoch 2) are kept" in stop_note(record, 5)
    from types import SimpleNamespace

    from titans_ts.training.loop import LossProgressBar

    bar = LossProgressBar()  # the progress bar too: Lightning's read "Epoch 0/9" for the first of 10
    bar._trainer = SimpleNamespace(max_epochs=10)
    assert bar._get_train_description(0).strip() == "Epoch 1/10"
    assert bar._get_train_description(9).strip() == "Epoch 10/10"


def test_a_fit_leaves_the_callers_random_generators_as_they_were():
    """Each fit seeds every generator for its own run; a script's own draws after it went on from that seed."""
    import random

    import numpy as np
    import torch

    from tests.forecasting.test_estimator import TINY
    from titans_ts import TitansForecaster

    frame = np.random.default_rng(0).normal(size=(200, 2)).cumsum(axis=0)

    import os

    from genomics.classifier import DNAClassifier

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1)), os.environ.get("PL_GLOBAL_SEED")

    sequences = ["ACGTACGTAC" * 5, "GGCCGGCCAA" * 5] * 5
    fits = (
        lambda: TitansForecaster(**{**TINY, "epochs": 1}).fit(frame),
        lambda: DNAClassifier(pretrained=False, dim=8, layers=1, heads=2, epochs=1, progress=False).fit(
            sequences, [0, 1] * 5
        ),
    )
    for seed, fit in zip((5, 6), fits, strict=True):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        expected = draws()
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        fit()
        assert draws() == expected


def test_stop_lines_count_epochs_as_they_were():
    """The lines said "after 1 epochs (61 steps)", and "interrupted after 1 epochs" of a run stopped 63 steps in,
    part-way through its second epoch (Lightning counts an epoch as run once it finished)."""
    from titans_ts.training import stop_note

    budget = {"stop_reason": "time_budget", "epochs_run": 1, "steps": 61, "best_epoch": 0}
    assert stop_note(budget, 2) == (
        "Training stopped at its time budget (2 min) after 1 epoch (61 steps); the best epoch's weights (epoch 1) "
        "are kept."
    )
    interrupted = {"stop_reason": "interrupted", "epochs_run": 1, "steps": 63, "best_epoch": 0}
    assert stop_note(interrupted) == (
        "Training was interrupted in epoch 2 (1 epoch finished, 63 steps); the best epoch's weights (epoch 1) are kept."
    )
    assert "interrupted in epoch 4 (3 epochs finished);" in stop_note({"stop_reason": "interrupted", "epochs_run": 3})
    assert stop_note({"stop_reason": "max_epochs", "epochs_run": 3}) is None
    one_step = {"stop_reason": "time_budget", "epochs_run": 1, "steps": 1, "best_epoch": 0}
    assert "after 1 epoch (1 step);" in stop_note(one_step, 1)  # it said "(1 steps)"


def test_an_interrupted_run_is_not_recorded_and_says_where_it_stopped():
    from titans_ts.training.loop import require_finished

    with pytest.raises(KeyboardInterrupt, match=r"ETTh1: training was interrupted in epoch 2 \(1 epoch finished"):
        require_finished({"stop_reason": "interrupted", "epochs_run": 1, "steps": 63}, "ETTh1")
    require_finished({"stop_reason": "max_epochs", "epochs_run": 1}, "ETTh1")  # a finished run passes


@pytest.mark.parametrize(
    "setting, named",
    [
        ({"devices": 0}, "devices=0 (a number of devices"),
        ({"devices": "0,x"}, "devices='0,x'"),
        ({"num_nodes": 0}, "num_nodes=0 (1 or more machines)"),
        ({"strategy": "foo"}, "strategy='foo' ('auto' for one process, or 'ddp'"),
        # spawned or forked ranks trained where the best weights were not kept (ddp_fork saved the last epoch's
        # and a record of 0 epochs; ddp_spawn failed on the loader's generator); sharded ones are not for these
        ({"strategy": "ddp_spawn"}, "strategy='ddp_spawn' ('auto' for one process, or 'ddp'"),
        ({"strategy": "ddp_fork"}, "strategy='ddp_fork'"),
        ({"strategy": "fsdp"}, "strategy='fsdp'"),
    ],
)
def test_scale_out_settings_no_trainer_takes_are_refused_before_any_data_is_read(setting, named):
    """They failed inside Lightning after the data was read (titans-dna had printed "Fold 1 of 5"): a traceback."""
    from genomics.classifier import DNAClassifier
    from titans_ts import TitansForecaster
    from titans_ts.errors import ConfigError

    for estimator in (TitansForecaster, DNAClassifier):
        with pytest.raises(ConfigError, match=re.escape(named)):
            estimator(**setting).check_params()
    devices = ({"devices": -1}, {"devices": "0,1"}, {"devices": "0,"}, {"devices": [0]}, {"devices": "auto"})
    for fine in (*devices, {"strategy": "ddp"}, {"strategy": "DDP"}, {"strategy": "Auto"}):  # as Lightning reads them
        TitansForecaster(**fine).check_params()


def test_a_trainer_lightning_refuses_or_a_launchers_mismatch_is_one_clear_error(monkeypatch):
    """devices=-1 on the CPU (our own message offers -1 for all) ended in Lightning's TypeError traceback; a process
    that torchrun started as one of 2 with devices=1 trained a model of its own on half the data, without a word."""
    import numpy as np

    from titans_ts import TitansForecaster
    from titans_ts.errors import ConfigError

    values = np.sin(np.arange(200)[:, None] / 5 + np.arange(2))
    small = dict(horizon=4, lookback=8, dim=8, layers=1, epochs=1, progress=False, device="cpu")
    with pytest.raises(ConfigError, match=r"Lightning cannot train with accelerator='cpu', devices=-1"):
        TitansForecaster(**small, devices=-1).fit(values)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"one of 2 that a launcher started .* devices=1 x num_nodes=1"):
        TitansForecaster(**small).fit(values)
    from titans_ts.distributed import launcher_problems

    assert launcher_problems(2, 1) == [] and launcher_problems(1, 2) == []  # as many as the launcher started


def test_after_an_interrupted_ddp_run_the_observer_of_its_ranks_kills_nothing():
    """Ctrl-C on a DDP run: Lightning kills the ranks it started, then its observer thread, seeing one dead,
    SIGKILLed the main process while it saved the best weights (exit 137, nothing saved). Here the observer
    watches a rank that failed, and would kill a stand-in for the main process, but has been stopped."""
    import subprocess
    import time

    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    from titans_ts.training.loop import stop_rank_observers

    main = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    rank = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    try:
        rank.wait(timeout=60)
        observer = _ChildProcessObserver(main_pid=main.pid, child_processes=[rank], sleep_period=1)
        observer.start()
        stop_rank_observers()
        time.sleep(2.5)
        assert main.poll() is None and not observer.is_alive()  # the stand-in lives: nothing was killed
    finally:
        main.kill()
        main.wait()
