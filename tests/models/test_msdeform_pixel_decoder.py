"""Mask2Former's MSDeformAttnPixelDecoder against Hugging Face's Mask2FormerPixelDecoder (an
independent implementation of the official module) with the same random weights."""
import torch
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerPixelDecoder

from mask2former_testing import hf_pixel_decoder_name, randomise
from mmseg_maskformer.models.msdeform_pixel_decoder import MSDeformAttnPixelDecoder

IN_CHANNELS = [8, 16, 24, 40]


def test_pixel_decoder_matches_hf():
    torch.manual_seed(0)
    config = Mask2FormerConfig(feature_size=32, mask_feature_size=24, encoder_feedforward_dim=48,
                               num_attention_heads=4, encoder_layers=2, dropout=0.0,
                               common_stride=4, feature_strides=[4, 8, 16, 32])
    hf = Mask2FormerPixelDecoder(config, feature_channels=IN_CHANNELS).eval()
    randomise(hf)
    ours = MSDeformAttnPixelDecoder(IN_CHANNELS, feat_channels=32, out_channels=24,
                                    num_encoder_layers=2, num_heads=4, feedforward_channels=48)
    state = {hf_pixel_decoder_name(k): v for k, v in hf.state_dict().items()}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    ours.eval()
    # Odd sizes: 1/4 .. 1/32 of a 75x101 input (ceil), as a ResNet gives them.
    sizes = [(19, 26), (10, 13), (5, 7), (3, 4)]
    feats = [torch.randn(2, c, *s) for c, s in zip(IN_CHANNELS, sizes)]
    with torch.no_grad():
        want = hf(feats)
        mask_features, multi_scale = ours(feats)
    torch.testing.assert_close(mask_features, want.mask_features, rtol=1e-4, atol=1e-4)
    assert len(multi_scale) == 3
    for got, expected in zip(multi_scale, want.multi_scale_features):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_registered_builds_and_initialises():
    from mmseg_maskformer.registry import MODELS
    decoder = MODELS.build(dict(type='mmseg_maskformer.MSDeformAttnPixelDecoder',
                                in_channels=IN_CHANNELS, feat_channels=32, out_channels=24,
                                num_encoder_layers=1, num_heads=4))
    decoder.init_weights()
    assert decoder.input_projs[0].conv.bias.abs().sum() == 0
    assert decoder.level_embed.std() > 0.5  # normal(0, 1), not the zeros it was created with
    mask_features, multi_scale = decoder([torch.randn(1, c, 32 // 2**i, 32 // 2**i)
                                          for i, c in enumerate(IN_CHANNELS)])
    assert mask_features.shape == (1, 24, 32, 32)
    assert [tuple(f.shape[-2:]) for f in multi_scale] == [(4, 4), (8, 8), (16, 16)]
