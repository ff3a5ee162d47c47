"""The DNA backbone: the stem's shapes and padding masks, causality, the ablation, older weights."""

import pytest
import torch

from genomics.model import DNALanguageModel, DNAModelConfig, DNASequenceClassifier
from genomics.stem import ConvStem
from genomics.tokenizer import PAD_ID

SMALL = dict(dim=16, heads=2, layers=1, chunk_size=8, dropout=0.0)


def _ids(batch, length, seed=0):
    return torch.randint(7, 12, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("kernel, stride, length", [(0, 1, 13), (5, 1, 13), (9, 4, 37), (3, 8, 8), (9, 4, 3)])
def test_stem_shapes_and_token_mask(kernel, stride, length, pool):
    stem = ConvStem(16, kernel, stride, pool=pool)
    ids = _ids(2, length)
    ids[1, length // 2 :] = PAD_ID
    tokens, mask = stem(ids)
    n_tokens = -(-length // stride)
    assert tokens.shape == (2, n_tokens, 16) and mask.shape == (2, n_tokens)
    assert mask[0].all()
    real_tokens = -(-(length // 2) // stride)  # a window with any real base is a real token
    assert mask[1].sum() == real_tokens and not tokens[1, real_tokens:].any()


def test_stem_pools_the_mean_of_real_bases_only():
    stem = ConvStem(4, kernel=0, stride=4)
    ids = torch.tensor([[7, 8, 9, 10, 7, 8, PAD_ID, PAD_ID]])
    tokens, _ = stem(ids)
    embedded = stem.embed.weight
    torch.testing.assert_close(tokens[0, 0], embedded[[7, 8, 9, 10]].mean(0))
    torch.testing.assert_close(tokens[0, 1], embedded[[7, 8]].mean(0))
    stem.pool_mode = "max"
    tokens, _ = stem(ids)
    torch.testing.assert_close(tokens[0, 1], embedded[[7, 8]].amax(0))  # the pads do not count


@pytest.mark.parametrize(
    "block, stride, pooling, stem_pool, levels",
    [(b, s, "mean", "mean", 1) for b in ("lmm", "mac", "mag", "mal") for s in (1, 4)]
    + [(b, 4, "mean", "max", 3) for b in ("lmm", "mac", "mag", "mal")]
    + [("lmm", 4, "mean_max", "mean", 1), ("lmm", 4, "mean", "max", 1)],
)
def test_padding_in_a_batch_changes_no_prediction(block, stride, pooling, stem_pool, levels):
    options = dict(block=block, stride=stride, window=4, segment_len=4, pooling=pooling, stem_pool=stem_pool)
    config = DNAModelConfig(**SMALL, **options, stem_kmer=3, stem_levels=levels)
    model = DNASequenceClassifier(config, 3)
    model.eval()
    ids = _ids(3, 29)
    short = 18
    ids[1, short:] = PAD_ID
    with torch.no_grad():
        alone = model(ids[1:2, :short])
        in_batch = model(ids)[1:2]
    torch.testing.assert_close(in_batch, alone, rtol=1e-5, atol=1e-5)


def test_kmer_ids_index_the_kmer_ending_at_each_base():
    from genomics.stem import kmer_ids

    # A C G T N A C  ->  2-mers ending at each base: (start), AC, CG, GT, TN, NA, AC
    ids = torch.tensor([[7, 8, 9, 10, 11, 7, 8, PAD_ID]])
    none = 16
    expected = [none, 0 * 4 + 1, 1 * 4 + 2, 2 * 4 + 3, none, none, 0 * 4 + 1, none]
    assert kmer_ids(ids, 2).tolist() == [expected]
    assert kmer_ids(ids, 1)[0, :4].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "stride, kmer, levels, pool",
    [(1, 0, 1, "mean"), (3, 0, 1, "mean"), (4, 0, 1, "mean"), (4, 3, 1, "mean"), (8, 0, 3, "max"), (8, 2, 2, "mean")],
)
def test_language_model_is_causal_and_trains(stride, kmer, levels, pool):
    options = dict(stride=stride, stem_kernel=5, stem_kmer=kmer, stem_levels=levels, stem_pool=pool)
    model = DNALanguageModel(DNAModelConfig(**SMALL, **options)).eval()
    ids = _ids(2, 30)
    logits = model(ids)
    assert logits.shape == (2, 29, 12)
    changed = ids.clone()
    changed[:, 17] = torch.where(ids[:, 17] == 7, 8, 7)
    moved = (model(changed) - logits).abs().amax(dim=(0, 2))
    # row r predicts base r + 1: the rows before base 17's own row (r = 17) must not move
    assert not moved[:17].any() and moved[17:].any()
    loss = model.train().loss(ids)
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad)


def test_ablation_without_memory_keeps_stem_pooling_and_head():
    model = DNASequenceClassifier(DNAModelConfig(**{**SMALL, "layers": 0}), 2)
    assert len(model.backbone.layers) == 0
    assert model(_ids(2, 21)).shape == (2, 2)
    memory = [name for name, _ in model.named_parameters() if "memory" in name]
    assert not memory


def test_gradients_reach_the_stem():
    model = DNASequenceClassifier(DNAModelConfig(**SMALL), 2)
    model(_ids(2, 21)).sum().backward()
    assert model.backbone.stem.conv.weight.grad.abs().sum() > 0
    assert model.backbone.stem.embed.weight.grad.abs().sum() > 0


def test_bad_architecture_is_a_clear_error():
    from titans_ts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"stride=0 \(1 or more\)\.$"):
        DNAModelConfig(stride=0)
    with pytest.raises(ConfigError, match=r": layers=-1 \(0 or more\)\.$"):  # only what is wrong is named
        DNAModelConfig(layers=-1)
    with pytest.raises(ConfigError, match="block"):
        DNAModelConfig(block="rnn")
    with pytest.raises(ConfigError, match="stem_levels"):
        DNAModelConfig(stride=4, stem_levels=4)
    with pytest.raises(ConfigError, match="stem_kmer"):
        DNAModelConfig(stem_kmer=12)


def test_weights_from_before_the_stem_still_load(tmp_path):
    """A language model saved without stem keys is the embedding-only model (stem_kernel 0, stride 1)."""
    from genomics.pretrained import load_backbone_weights
    from titans_ts.io import save_model_dir

    old = DNAModelConfig(**SMALL, stem_kernel=0, stride=1)
    model = DNALanguageModel(old)
    tensors = {k.replace("stem.embed", "embed"): v for k, v in model.state_dict().items()}
    old_keys = {k: v for k, v in old.to_dict().items() if k not in ("stem_kernel", "stride")}
    save_model_dir(tmp_path / "lm", tensors, {"format": "titans-ts dna language model", "model_config": old_keys})
    config, backbone = load_backbone_weights(tmp_path / "lm")
    assert (config.stem_kernel, config.stride) == (0, 1)
    classifier = DNASequenceClassifier(config, 2)
    classifier.backbone.load_state_dict(backbone)  # strict: every key matches
    torch.testing.assert_close(classifier.backbone.stem.embed.weight, model.backbone.stem.embed.weight)
