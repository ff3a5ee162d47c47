"""The long-memory forecaster (issue 28): the memory reads each channel's history in patches, its state
carried across segments in training (TBPTT) and across the whole series online."""

import pytest
import torch
from torch import nn

from titans_ts.data import split_borders
from titans_ts.errors import ConfigError
from titans_ts.forecasting.long_memory import LongMemoryConfig, LongMemoryForecaster, memory_modules, rows_at
from titans_ts.forecasting.long_memory_eval import (
    evaluate_split,
    frozen_forecasts,
    online_forecasts,
    split_origins,
)
from titans_ts.forecasting.segments import (
    SegmentModule,
    epoch_offset,
    fit_segments,
    segment_plan,
    window_loss,
    window_terms,
)
from titans_ts.memory import NeuralMemory

TINY = dict(
    lookback=8, horizon=4, patch_len=4, dim=8, heads=2, chunk_size=4, segment_patches=8, dropout=0.0, compile=False
)


def model_of(seed=0, dtype=torch.float64, head_std=0.3, **changes) -> LongMemoryForecaster:
    """A tiny model; head_std > 0: its memory path already reaches the forecast (the head's last layer
    starts at zero)."""
    torch.manual_seed(seed)
    model = LongMemoryForecaster(LongMemoryConfig(**{**TINY, **changes})).to(dtype)
    if head_std:
        nn.init.normal_(model.head[-1].weight, std=head_std)
    return model


def series_of(rows, channels=3, seed=0, dtype=torch.float64):
    return torch.randn(rows, channels, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("error_tokens", [False, True])
def test_state_carried_across_segments_equals_one_pass(error_tokens):
    model = model_of(layers=2, memory_depth=2, error_tokens=error_tokens)
    series = series_of(4 * 32)
    whole, whole_state = model.read(series[None])
    streamed, streamed_state = model.read_stream(series, 0, 32)  # four segments of 8 patches, state carried
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-12)
    for carried, one_pass in zip(streamed_state, whole_state, strict=True):
        for a, b in zip((*carried.weights, *carried.momentum), (*one_pass.weights, *one_pass.momentum), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # the training path: detaching at TBPTT boundaries changes gradients, never values
    plan_one, plan_all = (segment_plan(model, len(series), bptt=bptt) for bptt in (1, 3))
    terms_one, state = [], None
    for window in range(plan_one.n_windows):
        terms, state = window_terms(model, series, plan_one, window, state)
        terms_one += terms
    terms_all, _ = window_terms(model, series, plan_all, 0)
    torch.testing.assert_close(torch.stack([t[0] for t in terms_one]), torch.stack([t[0] for t in terms_all]))


def test_a_truncation_boundary_cuts_the_gradient_and_a_window_keeps_it():
    model = model_of()
    series = series_of(5 * 32).requires_grad_(True)
    plan = segment_plan(model, len(series), bptt=2)  # windows: segments (0, 1), (2, 3)

    def gradient_on_first_patch(window, segment, of_segment):
        """|d loss / d rows| over the first patch of `of_segment` (rows no local window of a later segment
        reaches), for the loss of the window's `segment`-th segment. The windows run afresh each time: the
        memory's backward frees its graph."""
        first, state = window_terms(model, series, plan, 0)
        terms = first if window == 0 else window_terms(model, series, plan, 1, state)[0]
        (grad,) = torch.autograd.grad(terms[segment][0], series)
        return grad[of_segment * 32 : of_segment * 32 + 4].abs().sum().item()

    assert gradient_on_first_patch(0, 1, of_segment=0) > 0  # through the state, inside a window
    assert gradient_on_first_patch(1, 1, of_segment=2) > 0
    assert gradient_on_first_patch(1, 0, of_segment=1) == 0  # across the boundary: cut
    assert gradient_on_first_patch(1, 1, of_segment=0) == 0


@pytest.mark.parametrize("error_tokens", [False, True])
def test_nothing_before_a_truncation_boundary_gets_a_gradient_but_the_local_windows_rows(error_tokens):
    """Every row before the second window (its first segment starts at row 64), not only a segment's first
    patch, is cut off from that window's losses (the conv's cache and the error tokens' rows included), but
    the lookback rows its first forecast reads (origin 68 reads rows 60-67)."""
    model = model_of(error_tokens=error_tokens)
    series = series_of(5 * 32).requires_grad_(True)
    plan = segment_plan(model, len(series), bptt=2)
    for segment in (0, 1):
        _, state = window_terms(model, series, plan, 0)
        terms, _ = window_terms(model, series, plan, 1, state)
        (grad,) = torch.autograd.grad(terms[segment][0], series)
        reached = (grad.abs().sum(dim=1) > 0).nonzero().flatten()
        # segment 0: its first forecast's lookback; segment 1: through the state, back to the window's first row
        assert reached.min().item() == {0: 60, 1: 64}[segment]


def test_a_stream_of_any_length_equals_one_pass_over_it():
    """A partial last segment (and chunk) read through read_stream equals one read of the same rows."""
    model = model_of(layers=2)
    series = series_of(4 * 32)
    for n_patches in (5, 9, 30):
        streamed, _ = model.read_stream(series, 0, n_patches)
        whole, _ = model.read(series[None, : 4 * n_patches])
        torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("error_tokens", [False, True])
def test_online_forecasts_never_read_the_future_and_do_read_the_long_past(error_tokens):
    model = model_of(error_tokens=error_tokens)
    series = series_of(200)
    origins = split_origins((120, 200), 8, 4)  # the protocol's windows of a split with rows [120, 200)
    online, frozen = online_forecasts(model, series, origins), frozen_forecasts(model, series, origins)
    assert online.shape == frozen.shape == (len(origins), 4, 3)

    future = series.clone()
    cut = 150
    future[cut:] += 5.0
    seen = origins <= cut  # an origin t reads rows < t only
    for forecaster, before in ((online_forecasts, online), (frozen_forecasts, frozen)):
        after = forecaster(model, future, origins)
        torch.testing.assert_close(after[seen], before[seen], rtol=0, atol=0)
        assert (after[~seen] - before[~seen]).abs().amax(dim=(1, 2)).min() > 0

    long_past = series.clone()
    long_past[10] += 3.0  # 100 rows before the split: outside every lookback
    assert (online_forecasts(model, long_past, origins) - online).abs().amax(dim=(1, 2)).min() > 0
    torch.testing.assert_close(frozen_forecasts(model, long_past, origins), frozen, rtol=0, atol=0)


@pytest.mark.parametrize("grid_start", [0, 3])
def test_online_forecasts_are_causal_at_any_cut_and_do_not_depend_on_how_far_the_stream_reads(grid_start):
    """Cuts on, just after and between the patch grid's borders; each forecast made alone (the stream read only
    up to its own origin) equals the same forecast made among all the split's."""
    model = model_of(error_tokens=True)
    series = series_of(200)
    origins = split_origins((120, 200), 8, 4)
    before = online_forecasts(model, series, origins, grid_start=grid_start)
    for cut in (148, 150, 151):
        future = series.clone()
        future[cut:] -= 2.0
        after = online_forecasts(model, future, origins, grid_start=grid_start)
        seen = origins <= cut
        torch.testing.assert_close(after[seen], before[seen], rtol=0, atol=0)
        assert (after[~seen] - before[~seen]).abs().amax(dim=(1, 2)).min() > 0
    for i in (0, 1, 7, 30, len(origins) - 1):
        alone = online_forecasts(model, series, origins[i : i + 1], grid_start=grid_start)[0]
        torch.testing.assert_close(alone, before[i], rtol=0, atol=1e-12)


@pytest.mark.parametrize("local, grid_start, dtype", [("rlinear", 0, torch.float64), ("variate", 3, torch.float32)])
def test_frozen_forecasts_share_each_patchs_error_tokens_and_equal_every_window_read_alone(local, grid_start, dtype):
    """The error tokens of a patch are computed once for every window that reads it (grid_patch_errors); each
    forecast equals a fresh memory reading that window's patches alone, error tokens from the rows before."""
    model = model_of(dtype=dtype, error_tokens=True, lookback=16, local=local, channels=3)
    series = series_of(200, dtype=dtype)
    origins = split_origins((120, 200), 16, 4)
    early = torch.tensor([9, 10, 15])  # before a whole lookback: rows before the series repeat its first
    for chosen in (origins, early):
        frozen = frozen_forecasts(model, series, chosen, grid_start=grid_start, batch=7)
        for i, origin in enumerate(chosen.tolist()):
            lag = (origin - grid_start) % 4
            n_patches = (16 - lag) // 4
            first = torch.tensor([origin - lag - 4 * n_patches])
            rows = rows_at(series, first, torch.arange(4 * n_patches))
            readouts, _ = model.read(rows, before=model.lookback_rows(series, first))  # its own error tokens
            alone = model.forecast_at(series, readouts, first, torch.tensor([[origin]]))[0, 0]
            torch.testing.assert_close(frozen[i], alone, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-5)


def test_the_mlp_ablation_has_the_memorys_width_and_no_state():
    memory, ablation = model_of(), model_of(memory="mlp")
    lmm, mlp = memory.layers[0].mixer.memory, ablation.layers[0].mixer.net
    assert mlp[0].in_features == mlp[-1].out_features == lmm.to_out.out_features == TINY["dim"]
    assert mlp[0].out_features == lmm.to_out.in_features  # the hidden width is the memory's heads x head_dim
    assert not memory_modules(ablation) and not any(isinstance(m, NeuralMemory) for m in ablation.modules())

    def outside_the_mixers(model):
        return {name: tuple(p.shape) for name, p in model.state_dict().items() if ".mixer." not in name}

    assert outside_the_mixers(ablation) == outside_the_mixers(memory)  # otherwise the very same model
    assert len(outside_the_mixers(memory)) < len(memory.state_dict())
    series = series_of(200)
    readouts, state = ablation.read(series[None, :64])
    assert state is None and readouts.shape == memory.read(series[None, :64])[0].shape
    origins = split_origins((120, 200), 8, 4)
    torch.testing.assert_close(online_forecasts(ablation, series, origins), frozen_forecasts(ablation, series, origins))


def test_the_state_guard_pulls_a_carried_state_back_towards_the_initial_memory():
    series = series_of(64)
    free = model_of()
    _, state = free.read(series[None])
    assert free.carry(state) is state  # off by default
    bounded = model_of(max_state_norm=0.05, reset_mix=0.5)
    bounded.load_state_dict(free.state_dict())
    initial = bounded.layers[0].initial_weights()
    guarded = bounded.carry(state)[0]
    norm = lambda m: m.flatten(-2).norm(dim=-1)[..., None, None]  # noqa: E731  (per sequence and head)
    for w, g, w0 in zip(state[0].weights, guarded.weights, initial, strict=True):
        deviation, kept = w - w0, g - w0
        assert norm(kept).max() <= 0.05 + 1e-12
        torch.testing.assert_close(kept / norm(kept), deviation / norm(deviation))  # the same direction
    mixed = model_of(reset_mix=0.25)
    mixed.load_state_dict(free.state_dict())
    for w, g, w0 in zip(state[0].weights, mixed.carry(state)[0].weights, initial, strict=True):
        torch.testing.assert_close(g - w0, 0.75 * (w - w0))


def test_segments_move_between_epochs_and_stay_inside_the_training_rows():
    model = model_of()
    span = model.config.segment_rows
    offsets = [epoch_offset(seed=0, epoch=e, span=span) for e in range(8)]
    assert all(0 <= o < span for o in offsets) and len(set(offsets)) > 1
    assert offsets == [epoch_offset(0, e, span) for e in range(8)]  # the same for the same (seed, epoch)
    counts = set()
    for offset in range(span):
        plan = segment_plan(model, 300, streams=2, bptt=2, offset=offset)
        last_row = max(plan.stream_starts) + plan.n_segments * span
        assert plan.stream_starts[1] == plan.stream_starts[0] + plan.n_segments * span and last_row <= 300
        counts.add(plan.n_windows)
    assert len(counts) == 1  # every epoch has as many steps
    with pytest.raises(ConfigError, match="multiple of chunk_size"):
        LongMemoryConfig(**{**TINY, "segment_patches": 6})


def test_training_reads_only_training_rows_and_validates_online():
    borders = split_borders(400, 8, 4)  # 70/10/20: train rows [0, 280)
    val_origins = split_origins(borders.val, 8, 4)

    def fitted(series):
        model = model_of(dtype=torch.float32)
        module = SegmentModule(model, series, borders.train[1], val_origins, streams=2, bptt=2, seed=0)
        record = fit_segments(module, max_epochs=1, patience=1, progress=False, device="cpu")
        return model, record

    series = series_of(400, dtype=torch.float32)
    model, record = fitted(series)
    changed = series.clone()
    changed[borders.train[1] :] += 10.0  # val and test rows
    other, _ = fitted(changed)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[name], value, rtol=0, atol=0)
    scores = evaluate_split(model, series, borders.val, "online")
    assert scores["windows"] == borders.windows(8, 4)["val"] == len(val_origins)
    assert scores["mse"] == pytest.approx(record["best"], rel=1e-5)


def test_a_training_step_continues_the_state_the_last_one_left_and_streams_keep_their_own():
    """SegmentModule's steps of an epoch: each window's loss is that of the chain of windows with the state
    carried (not a fresh memory), and each stream of the batch reads as if it were alone."""
    model = model_of()
    series = series_of(400)
    module = SegmentModule(model, series.float(), 280, split_origins((280, 340), 8, 4), streams=2, bptt=1, seed=3)
    module.series = series  # float64, as the model
    module.log_train_loss = lambda loss, **_: loss
    module.on_train_epoch_start()
    plan, state = module.epoch_plan, None
    assert plan.n_windows > 2
    for window in range(plan.n_windows):
        terms, state = window_terms(model, series[:280], plan, window, state)
        state = [s.detach() for s in state]
        torch.testing.assert_close(module.training_step(window, 0), window_loss(terms), rtol=0, atol=1e-12)
    fresh = window_loss(window_terms(model, series[:280], plan, plan.n_windows - 1)[0])
    assert abs(fresh.item() - window_loss(terms).item()) > 1e-6  # so a step that forgot the state would fail
    starts = torch.tensor(plan.stream_starts)
    together, _, _ = model(series, starts, 8)
    for k in range(len(starts)):
        alone, _, _ = model(series, starts[k : k + 1], 8)
        torch.testing.assert_close(together[k], alone[0], rtol=0, atol=1e-12)


def test_the_memory_learns_a_level_that_no_lookback_window_shows():
    """Each channel is its own level plus noise as large: a window of 8 rows estimates the level badly, the
    memory, reading every earlier patch, well. Trained alike, the memory's online forecasts beat the same
    model's frozen ones (memory reset per window) and the MLP ablation."""
    rows = 3 * 32 + 8

    def levels(generator, channels):
        return torch.randn(1, channels, generator=generator) + torch.randn(rows, channels, generator=generator)

    def trained(memory):
        options = dict(memory=memory, dim=16, memory_depth=1, chunk_size=8, max_lr=0.5)
        model = model_of(seed=0, dtype=torch.float32, head_std=0, **options)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
        generator = torch.Generator().manual_seed(0)
        for _ in range(60):
            series = levels(generator, 32)
            terms, _ = window_terms(model, series, segment_plan(model, rows, bptt=3), 0)
            optimizer.zero_grad()
            window_loss(terms).backward()
            optimizer.step()
        return model

    test = levels(torch.Generator().manual_seed(99), 512)
    split = (48, rows)  # 45 windows per channel, each after at least 48 rows of history
    memory, ablation = trained("lmm"), trained("mlp")
    online = evaluate_split(memory, test, split, "online")["mse"]
    assert online < evaluate_split(memory, test, split, "frozen")["mse"] - 0.02
    assert online < evaluate_split(ablation, test, split, "online")["mse"] - 0.02


def test_error_tokens_hold_each_patchs_error_against_the_local_forecast_made_at_its_start():
    model = model_of(error_tokens=True, lookback=8, patch_len=4, horizon=4)
    series = series_of(40)
    errors = model._patch_errors(series[None, 8:24], series[None, :8])  # patches at rows 8, 12, 16, 20
    for k, start in enumerate(range(8, 24, 4)):
        window = series[start - 8 : start].T  # (C, lookback)
        mean, std = window.mean(-1, keepdim=True), torch.sqrt(window.var(-1, unbiased=False, keepdim=True) + 1e-5)
        local = model.local_linear((window - mean) / std) * std + mean
        torch.testing.assert_close(errors[:, k], series[start : start + 4].T - local[:, :4])
    with pytest.raises(ConfigError, match="horizon=2 must be >= patch_len=4"):
        LongMemoryConfig(**{**TINY, "horizon": 2, "error_tokens": True})


def test_a_dlinear_local_part_is_dlinear_until_the_memory_path_learns():
    from titans_ts.forecasting.model import DLinear, ForecastConfig

    model = model_of(head_std=0.0, local="dlinear", lookback=30, horizon=6)
    dlinear = DLinear(ForecastConfig(lookback=30, horizon=6, channels=3, variant="dlinear")).double()
    dlinear.seasonal.load_state_dict(model.local_linear.state_dict())
    dlinear.trend.load_state_dict(model.local_trend.state_dict())
    series = series_of(120)
    origins = torch.tensor([[40, 77, 101]])
    readouts, _ = model.read(series[None, 8:104])  # patches of rows 8 .. 103, so every origin has one
    forecasts = model.forecast_at(series, readouts, torch.tensor([8]), origins)[0]
    windows = torch.stack([series[t - 30 : t] for t in origins[0].tolist()])
    torch.testing.assert_close(forecasts, dlinear(windows))


@pytest.mark.parametrize("error_tokens", [False, True])
def test_a_variate_local_part_is_the_window_model_and_stays_causal(error_tokens):
    variate = dict(local="variate", channels=3, local_variant="lmm", error_tokens=error_tokens)
    model = model_of(head_std=0.0, dtype=torch.float32, **variate)  # the window model runs in float32
    series = series_of(200, dtype=torch.float32)
    origins = torch.tensor([[40, 77, 101]])
    readouts, _ = model.read(series[None, 8:104])
    forecasts = model.forecast_at(series, readouts, torch.tensor([8]), origins)[0]
    windows = torch.stack([series[t - 8 : t] for t in origins[0].tolist()])
    torch.testing.assert_close(forecasts, model.window_model(windows))  # the memory head starts at zero
    nn.init.normal_(model.head[-1].weight, std=0.3)
    origins = split_origins((120, 200), 8, 4)
    online = online_forecasts(model, series, origins)
    future = series.clone()
    future[150:] += 5.0
    seen = origins <= 150
    torch.testing.assert_close(online_forecasts(model, future, origins)[seen], online[seen], rtol=0, atol=0)
