"""Mask2Former's masked-attention transformer decoder against Hugging Face's
Mask2FormerTransformerModule and class predictor (an independent implementation of the official
decoder) with the same random weights."""
import pytest
import torch
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerTransformerModule

from mask2former_testing import hf_decoder_state, randomise
from mmseg_maskformer.models.mask2former_decoder import MaskedAttentionTransformerDecoder

NUM_CLASSES, QUERIES, HIDDEN, MASK_CHANNELS = 6, 5, 32, 24


@pytest.mark.parametrize('feature_channels', [HIDDEN, 40])  # identity and 1x1 input projections
def test_decoder_matches_hf(feature_channels):
    torch.manual_seed(0)
    config = Mask2FormerConfig(hidden_dim=HIDDEN, num_attention_heads=4, dim_feedforward=48,
                               decoder_layers=5, num_queries=QUERIES, num_labels=NUM_CLASSES,
                               mask_feature_size=MASK_CHANNELS, feature_size=feature_channels,
                               dropout=0.0, pre_norm=False)
    hf = Mask2FormerTransformerModule(in_features=feature_channels, config=config).eval()
    class_predictor = torch.nn.Linear(HIDDEN, NUM_CLASSES + 1)
    randomise(hf, class_predictor)
    ours = MaskedAttentionTransformerDecoder(feature_channels, NUM_CLASSES, MASK_CHANNELS,
                                             num_queries=QUERIES, num_layers=4, embed_dims=HIDDEN,
                                             num_heads=4, feedforward_channels=48).eval()
    missing, unexpected = ours.load_state_dict(hf_decoder_state(hf.state_dict(), class_predictor),
                                               strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    # Coarsest first, odd sizes; mask features at 1/4.
    features = [torch.randn(2, feature_channels, *size) for size in ((3, 4), (5, 7), (10, 13))]
    mask_features = torch.randn(2, MASK_CHANNELS, 19, 26)
    with torch.no_grad():
        want = hf(features, mask_features)
        all_cls, all_masks = ours(features, mask_features)
    assert len(all_cls) == len(all_masks) == 5 == len(want.masks_queries_logits)
    for got, expected in zip(all_masks, want.masks_queries_logits):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    for got, hidden in zip(all_cls, want.intermediate_hidden_states):
        torch.testing.assert_close(got, class_predictor(hidden.transpose(0, 1)), rtol=1e-4,
                                   atol=1e-4)


def test_fully_masked_queries_attend_everywhere():
    torch.manual_seed(1)
    decoder = MaskedAttentionTransformerDecoder(16, 3, 8, num_queries=4, num_layers=2,
                                                embed_dims=16, num_heads=2,
                                                feedforward_channels=16).eval()
    # Mask embeddings of -1 against all-ones features: every mask logit is -8, σ < 0.5 at every
    # pixel, so every query's mask is empty; without the official unmasking the softmax would run
    # over nothing and give NaN.
    with torch.no_grad():
        decoder.mask_embed.layers[-1].weight.zero_()
        decoder.mask_embed.layers[-1].bias.fill_(-1.0)
    features = [torch.randn(1, 16, 2, 2), torch.randn(1, 16, 3, 3), torch.randn(1, 16, 4, 4)]
    with torch.no_grad():
        all_cls, all_masks = decoder(features, torch.ones(1, 8, 8, 8))
    assert (all_masks[0] == -8).all()
    assert all(torch.isfinite(c).all() for c in all_cls)
