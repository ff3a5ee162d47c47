import pytest
import torch

from titans_ts.errors import ConfigError
from titans_ts.forecasting.layers import EinFFT, PatchTokenizer, RevIN
from titans_ts.forecasting.model import UNTRAINED, VARIANTS, ForecastConfig, build_model

TRAINED = [variant for variant in VARIANTS if variant not in UNTRAINED]  # naive ones: tests/forecasting/test_naive.py


@pytest.mark.parametrize("variant", TRAINED)
@pytest.mark.parametrize("tokens", ["patch", "variate"])
def test_every_variant_maps_lookback_to_horizon_and_trains(variant, tokens):
    torch.manual_seed(0)
    config = ForecastConfig(
        lookback=24,
        horizon=12,
        channels=3,
        variant=variant,
        tokens=tokens,
        dim=16,
        layers=1,
        heads=2,
        patch_len=8,
        stride=4,
        chunk_size=4,
        dropout=0.0,
    )
    model = build_model(config)
    x = torch.randn(5, 24, 3)
    y = model(x)
    assert y.shape == (5, 12, 3)
    loss = y.square().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_revin_round_trip():
    revin = RevIN(4)
    x = 3.0 + 2.0 * torch.randn(2, 30, 4)
    normed, stats = revin.normalize(x)
    assert normed.mean(dim=1).abs().max() < 1e-5
    torch.testing.assert_close(revin.denormalize(normed, stats), x, rtol=1e-4, atol=1e-4)


def test_einfft_keeps_shape_and_is_real():
    mixer = EinFFT(16, blocks=4)
    x = torch.randn(3, 7, 16)
    out = mixer(x)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_patch_tokenizer_counts_patches():
    tokenizer = PatchTokenizer(96, 8, patch_len=16, stride=8)
    assert tokenizer(torch.randn(2, 96, 3)).shape == (6, tokenizer.n_patches, 8)
    assert tokenizer.n_patches == 12  # PatchTST: (96 - 16) / 8 + 1, plus the end-padded patch


def test_bad_configurations():
    with pytest.raises(ConfigError, match="variant='mamba' is not one of"):
        ForecastConfig(variant="mamba")
    with pytest.raises(ConfigError, match="divisible"):
        ForecastConfig(dim=30, heads=4)
