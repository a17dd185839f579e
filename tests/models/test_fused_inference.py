"""Whole-image prediction through the fused inference ops against mmseg's own post-processing
(``EncoderDecoder.predict`` = scores, then ``postprocess_result``) and the reference panoptic
path, on a tiny MaskFormerSegmentor with random weights."""
import pytest
import torch
from mmseg.structures import SegDataSample

from head_testing import tiny_segmentor
from extension_testing import skip_or_fail_without_extension

# Network input 64x64; the image sat in its top-left corner (batch padding on the right and
# bottom), then mmseg resizes to the original size; flips undone first.
METAS = [
    dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64)),
    dict(img_shape=(56, 48), pad_shape=(64, 64), ori_shape=(150, 97),
         img_padding_size=[0, 16, 0, 8], flip=True, flip_direction='horizontal'),
    dict(img_shape=(60, 64), pad_shape=(64, 64), ori_shape=(31, 37), padding_size=[0, 0, 0, 4],
         flip=True, flip_direction='vertical'),
]


@pytest.fixture(autouse=True)
def _needs_extension():
    skip_or_fail_without_extension('cpu')


def predict(model, impl, inputs, metas, **test_cfg):
    model.decode_head.test_cfg.update(impl=impl, **test_cfg)
    samples = [SegDataSample(metainfo=dict(meta)) for meta in metas]
    with torch.no_grad():
        return model.predict(inputs, samples)


def margin(scores):
    top2 = scores.topk(2, dim=0).values
    return top2[0] - top2[1]


@pytest.mark.parametrize('meta', METAS, ids=['plain', 'padded-hflip-up', 'padded-vflip-down'])
def test_fused_labels_equal_mmseg_postprocess(meta):
    torch.manual_seed(0)
    model = tiny_segmentor(dict(mode='semantic'), num_classes=6).eval()
    inputs = torch.randn(1, 3, 64, 64)
    assert model.fused_labels(inputs.device)
    fused, = predict(model, 'fused', inputs, [meta])
    peer, = predict(model, 'reference', inputs, [meta])  # mmseg's EncoderDecoder.predict
    assert 'seg_logits' not in fused and 'seg_logits' in peer
    labels, want = fused.pred_sem_seg.data, peer.pred_sem_seg.data
    assert labels.shape == want.shape == (1, ) + meta['ori_shape'] and labels.dtype == want.dtype
    clear = margin(peer.seg_logits.data) > 1e-5
    assert clear.float().mean() > 0.95
    assert torch.equal(labels[0][clear], want[0][clear])


def test_batch_of_different_images_and_bare_inputs():
    torch.manual_seed(1)
    model = tiny_segmentor(dict(mode='semantic'), num_classes=4).eval()
    inputs = torch.randn(3, 3, 64, 64)
    fused = predict(model, 'fused', inputs, METAS)
    peer = predict(model, 'reference', inputs, METAS)
    for got, want in zip(fused, peer):
        clear = margin(want.seg_logits.data) > 1e-5
        assert torch.equal(got.pred_sem_seg.data[0][clear], want.pred_sem_seg.data[0][clear])
    # Without data samples mmseg predicts at the input size, without crop or resize.
    with torch.no_grad():
        bare = model.predict(inputs[:1])
    assert bare[0].pred_sem_seg.data.shape == (1, 64, 64)
    model.decode_head.test_cfg['impl'] = 'reference'
    with torch.no_grad():
        bare_peer = model.predict(inputs[:1])
    clear = margin(bare_peer[0].seg_logits.data) > 1e-5
    assert torch.equal(bare[0].pred_sem_seg.data[0][clear], bare_peer[0].pred_sem_seg.data[0][clear])


def test_output_seg_logits_and_slide_mode_use_the_fused_scores():
    torch.manual_seed(2)
    model = tiny_segmentor(dict(mode='semantic'), num_classes=5).eval()
    inputs = torch.randn(1, 3, 64, 64)
    meta = METAS[1]
    with_scores, = predict(model, 'fused', inputs, [meta], output_seg_logits=True)
    peer, = predict(model, 'reference', inputs, [meta], output_seg_logits=False)
    assert not model.fused_labels(inputs.device)
    torch.testing.assert_close(with_scores.seg_logits.data, peer.seg_logits.data, rtol=1e-5,
                               atol=1e-6)
    slide = tiny_segmentor(dict(mode='semantic'), num_classes=5, mode='slide', crop_size=(48, 48),
                           stride=(32, 32)).eval()
    slide.load_state_dict(model.state_dict())
    assert not slide.fused_labels(inputs.device)
    got, = predict(slide, 'fused', inputs, [meta], output_seg_logits=False)
    want, = predict(slide, 'reference', inputs, [meta])
    torch.testing.assert_close(got.seg_logits.data, want.seg_logits.data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('meta', METAS, ids=['plain', 'padded-hflip-up', 'padded-vflip-down'])
def test_fused_panoptic_equals_reference(meta):
    torch.manual_seed(3)
    # Thresholds that keep several queries and let the overlap filter drop some.
    model = tiny_segmentor(dict(mode='panoptic', object_mask_threshold=0.0,
                                overlap_threshold=0.5, thing_classes=[2, 3])).eval()
    inputs = torch.randn(1, 3, 64, 64)
    fused, = predict(model, 'fused', inputs, [meta])
    reference, = predict(model, 'reference', inputs, [meta])
    segments = reference.pred_segments_info
    assert len(segments) >= 2 and any(s['isthing'] for s in segments)
    assert torch.equal(fused.pred_panoptic_seg.data, reference.pred_panoptic_seg.data)
    assert fused.pred_segments_info == segments
    assert fused.pred_panoptic_seg.data.shape == (1, ) + meta['ori_shape']
