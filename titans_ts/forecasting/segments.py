"""Training the long-memory forecaster the way it is used (issue 28): contiguous segments in time order,
the memory state carried from one segment to the next, truncated back-propagation through time.

An epoch cuts the training rows into `streams` contiguous streams of `n_segments` segments each
(segment = `segment_patches` patches), starting at a random offset in [0, segment rows) drawn per epoch
from (seed, epoch), so patch and segment boundaries move between epochs. A step is one TBPTT window: the
next `bptt` segments of every stream, read in order with the state carried (`model.carry` between
segments); back-propagation runs through the window's segments and stops at its start, where the state
arriving from the previous window is detached. Every row of a segment is a forecast origin (dense
supervision, `LongMemoryForecaster.forward`), and an origin counts in the loss when its whole window and
horizon lie inside the training rows; the training series handed in is cut at the end of the training
rows, so nothing of val or test is ever read.

`SegmentModule` is a `SummedMetricsModule` (AdamW, warm-up + cosine, early stopping and best weights via
`train_and_restore`) whose batches are window indices: Lightning's loop steps once per window and the
module carries the state between steps, resetting it at each epoch's start. Validation is the online
evaluation of the val windows (`long_memory_eval`). A checkpoint written part-way through an epoch holds the
carried state, and the loader's place (`ResumableLoader`): a run resumed from it goes on as the uninterrupted
one. Limits: one process (under DDP each rank would need streams of its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from titans_ts.checkpointing import ResumableLoader
from titans_ts.errors import DataValidationError
from titans_ts.forecasting.long_memory import LongMemoryForecaster, rows_at
from titans_ts.forecasting.long_memory_eval import error_sums, online_forecasts
from titans_ts.forecasting.training import ForecastModule
from titans_ts.training import train_and_restore


@dataclass(frozen=True)
class SegmentPlan:
    """Where one epoch's segments lie: stream k's segment i starts at row start_k + i * segment_rows."""

    stream_starts: tuple[int, ...]
    n_segments: int
    segment_rows: int
    bptt: int  # segments per back-propagation window

    @property
    def n_windows(self) -> int:
        return -(-self.n_segments // self.bptt)

    def __post_init__(self):
        stream_rows = self.n_segments * self.segment_rows
        if self.stream_starts != tuple(self.stream_starts[0] + k * stream_rows for k in range(len(self.stream_starts))):
            raise ValueError(f"the streams must lie end to end, {stream_rows} rows apart; got {self.stream_starts}.")

    def window_segments(self, window: int) -> range:
        return range(window * self.bptt, min((window + 1) * self.bptt, self.n_segments))

    def segment_starts(self, segment: int, device=None) -> torch.Tensor:
        """Every stream's start row of `segment`, made on the device (not copied from the host: a copy would wait
        for the GPU at every segment); the streams lie end to end, as `segment_plan` lays them."""
        first = self.stream_starts[0] + segment * self.segment_rows
        return torch.arange(len(self.stream_starts), device=device) * (self.n_segments * self.segment_rows) + first


def segment_plan(model: LongMemoryForecaster, train_rows: int, streams: int = 1, bptt: int = 1, offset: int = 0):
    """The plan of an epoch over `train_rows` rows; n_segments leaves room for any offset < segment rows,
    so every epoch has the same number of steps."""
    span = model.config.segment_rows
    if not 0 <= offset < span:
        raise ValueError(f"offset must be in [0, {span}); got {offset}.")
    n_segments = (train_rows - span) // (streams * span)
    if n_segments < 1:
        raise DataValidationError(
            f"{train_rows} training rows hold no segment of {span} rows per stream ({streams} streams, plus "
            f"{span} rows for the random start): lower segment_patches, patch_len or streams."
        )
    starts = tuple(offset + k * n_segments * span for k in range(streams))
    return SegmentPlan(starts, n_segments, span, bptt)


def epoch_offset(seed: int, epoch: int, span: int) -> int:
    """The random start of an epoch's segments, in [0, span), the same for the same (seed, epoch)."""
    generator = torch.Generator().manual_seed(int(1_000_003 * seed + epoch))
    return int(torch.randint(span, (), generator=generator))


def segment_error(model: LongMemoryForecaster, series: torch.Tensor, starts: torch.Tensor, state=None):
    """One segment of every stream: (summed squared error over the origins that count, their element count,
    the state after the segment). An origin counts when its window and horizon lie inside `series`."""
    config = model.config
    forecasts, origins, state = model(series, starts, config.segment_patches, state)
    targets = rows_at(series, origins, torch.arange(config.horizon, device=origins.device))
    counts = (origins >= config.lookback) & (origins + config.horizon <= series.shape[0])
    squared = (forecasts - targets).square() * counts[..., None, None]
    return squared.sum(), counts.sum() * config.horizon * series.shape[1], state


def window_terms(model: LongMemoryForecaster, series: torch.Tensor, plan: SegmentPlan, window: int, state=None):
    """One TBPTT window: its segments in order from `state` (detached: no gradient crosses into an earlier
    window), guarded between segments. Returns [(squared error, count)] per segment and the state after."""
    state = detached(state)
    terms = []
    for segment in plan.window_segments(window):
        squared, count, state = segment_error(model, series, plan.segment_starts(segment, series.device), state)
        terms.append((squared, count))
        state = model.carry(state)
    return terms, state


def window_loss(terms) -> torch.Tensor:
    """The mean squared error over every counted element of a window's segments."""
    squared = sum(term[0] for term in terms)
    count = sum(term[1] for term in terms)
    return squared / count.clamp_min(1)


def detached(state):
    return None if state is None else [None if s is None else s.detach() for s in state]


def on_device(state, device):
    """A carried state (a MemoryState or None per block) on `device`: a checkpoint's is read onto the CPU."""
    return None if state is None else [None if s is None else s.to(device) for s in state]


class SegmentModule(ForecastModule):
    """Lightning training of a LongMemoryForecaster on a stream (module doc). A batch is a window index;
    the optimizer, its defaults and the val_mse / val_mae logging are ForecastModule's.

    series: (T, C) scaled rows of the channels to forecast, at least up to the end of validation;
    train_end: the first row after the training rows; val_origins: the forecast origins of the val windows.
    """

    def __init__(
        self,
        model: LongMemoryForecaster,
        series: torch.Tensor,
        train_end: int,
        val_origins: torch.Tensor,
        *,
        streams: int = 1,
        bptt: int = 1,
        seed: int = 0,
        **optimizer,
    ):
        super().__init__(model, **optimizer)  # lr, weight_decay, warmup: ForecastModule's defaults
        self.register_buffer("series", torch.as_tensor(series, dtype=torch.float32), persistent=False)
        self.register_buffer("val_origins", torch.as_tensor(val_origins), persistent=False)
        self.train_end, self.streams, self.bptt, self.seed = train_end, streams, bptt, seed
        self.epoch_plan = self.plan(epoch=0)
        self.n_windows = self.epoch_plan.n_windows
        self.state = None
        self.window = None  # the last window trained on
        self._resumed_state = None  # a checkpoint's carried state, for the rest of its epoch

    def plan(self, epoch: int) -> SegmentPlan:
        offset = epoch_offset(self.seed, epoch, self.model.config.segment_rows)
        return segment_plan(self.model, self.train_end, self.streams, self.bptt, offset)

    def on_train_epoch_start(self):
        self.state = None  # each epoch reads its streams from the trained initial memory
        self.epoch_plan = self.plan(self.current_epoch)  # its random start drawn once, not in every step

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.window is not None and self.window < self.n_windows - 1:  # part-way through the epoch
            checkpoint["segment_state"] = self.state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning does not call on_train_epoch_start for an epoch resumed part-way through: its plan is set
        # here, and its carried state once the module is on its device (on_train_start)
        self.epoch_plan = self.plan(checkpoint["epoch"])
        self._resumed_state = checkpoint.get("segment_state")

    def on_train_start(self):
        self.state, self._resumed_state = on_device(self._resumed_state, self.device), None

    def training_step(self, window, _):
        plan, self.window = self.epoch_plan, int(window)
        train_rows = self.series[: self.train_end]
        terms, state = window_terms(self.model, train_rows, plan, self.window, self.state)
        self.state = detached(state)  # the next window starts here, without this window's graph
        return self.log_train_loss(window_loss(terms), batch_size=len(plan.stream_starts))

    def validation_step(self, _batch, _):
        forecasts = online_forecasts(self.model, self.series, self.val_origins)
        self.accumulate(error_sums(forecasts, self.series, self.val_origins))


def segment_loaders(module: SegmentModule) -> tuple[DataLoader, DataLoader]:
    """(train, val): the window indices of an epoch in order (each a batch of one), and one validation batch
    (the whole val split)."""
    batches = [[window] for window in range(module.n_windows)]
    return ResumableLoader(range(module.n_windows), batches, collate_fn=_the_index), DataLoader([0], batch_size=None)


def _the_index(batch: list[int]) -> int:
    """A window index as it is (collated, it would be a tensor, moved to the GPU and read back every step)."""
    return batch[0]


def fit_segments(module: SegmentModule, **trainer_options) -> dict:
    """Train with early stopping on the online val MSE and keep the best weights: `train_and_restore`'s record.
    trainer_options: make_trainer's (max_epochs, patience, progress, device, ...); monitor is val_mse."""
    train, val = segment_loaders(module)
    return train_and_restore(module, train, val, **{"monitor": "val_mse", **trainer_options})
