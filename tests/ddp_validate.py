"""Helper of tests/test_ddp.py (not a test): validate one saved model under Lightning DDP on the CPU and
write rank 0's validation metric. Lightning re-runs this script once per extra rank.

    python tests/ddp_validate.py forecaster MODEL_DIR DATA.csv OUT.json DEVICES
    python tests/ddp_validate.py classifier MODEL_DIR DATA.csv OUT.json DEVICES
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(kind, model_dir, data, out, devices):
    import lightning.pytorch as pl

    from titans_ts.distributed import is_main_process

    if kind == "forecaster":
        from titans_ts import TitansForecaster
        from titans_ts.data import load_dataset, make_splits
        from titans_ts.forecasting.training import ForecastModule

        estimator = TitansForecaster.load(model_dir)
        frame = load_dataset(data)
        loader = make_splits(frame, estimator.lookback, estimator.horizon, estimator.protocol).loaders(7, shard=True)[
            "val"
        ]
        module, metric = ForecastModule(estimator.model_), "val_mse"
    else:
        import pandas as pd

        from genomics.classifier import DNAClassifier
        from genomics.training import ClassifierModule, make_loader

        estimator = DNAClassifier.load(model_dir)
        table = pd.read_csv(data)
        labels = [list(estimator.classes_).index(label) for label in table["label"]]
        loader = make_loader(list(table["seq"]), labels, 7, shard=True)
        module, metric = ClassifierModule(estimator.model_), "val_loss"
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        use_distributed_sampler=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, loader, verbose=False)
    if is_main_process():
        Path(out).write_text(json.dumps({metric: float(trainer.callback_metrics[metric])}))


if __name__ == "__main__":
    kind, model_dir, data, out, devices = sys.argv[1:]
    main(kind, model_dir, data, out, int(devices))
