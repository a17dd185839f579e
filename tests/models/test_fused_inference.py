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
    assert torch.equal(bare[0].pred_sem_seg.data[0][clear],
                       bare_peer[0].pred_sem_seg.data[0][clear])


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


def crafted_logits(generator):
    """Last-layer logits of 7 confident queries (classes 0, 2, 2, 3, 5, 0, 2; things 2 and 3) with
    blob masks at 1/4 of the 64x64 input: queries 0 and 5 are one stuff segment, and query 6
    nearly repeats query 1 with a lower score, so the overlap filter drops it."""
    classes = torch.tensor([0, 2, 2, 3, 5, 0, 2])
    cls_logits = torch.randn(1, 7, 7, generator=generator)
    cls_logits[0, torch.arange(7), classes] = 8.0
    cls_logits[0, 6, classes[6]] = 5.0
    # Query q is sure of the cells c of a 4x4 grid with c % 6 == q, and of nothing else.
    owner = torch.arange(16).view(4, 4) % 6
    coarse = torch.where(owner == torch.arange(7).view(7, 1, 1), 6.0, -6.0)[None]
    coarse = coarse + torch.randn(1, 7, 4, 4, generator=generator)
    coarse[0, 6] = coarse[0, 1] - 0.5
    mask_logits = torch.nn.functional.interpolate(coarse, size=(16, 16), mode='bilinear')
    return cls_logits, mask_logits


@pytest.mark.parametrize('meta', METAS, ids=['plain', 'padded-hflip-up', 'padded-vflip-down'])
def test_fused_panoptic_equals_reference(meta, monkeypatch):
    model = tiny_segmentor(dict(mode='panoptic', object_mask_threshold=0.8,
                                overlap_threshold=0.8, thing_classes=[2, 3])).eval()
    logits = crafted_logits(torch.Generator().manual_seed(3))
    monkeypatch.setattr(model.decode_head, 'last_layer_logits', lambda feats: logits)
    inputs = torch.randn(1, 3, 64, 64)
    fused, = predict(model, 'fused', inputs, [meta])
    reference, = predict(model, 'reference', inputs, [meta])
    segments = reference.pred_segments_info
    # Stuff merged (classes 0 and 5), three things, the repeated query dropped.
    assert [(s['category_id'], s['isthing']) for s in segments] == [
        (0, False), (2, True), (2, True), (3, True), (5, False)]
    assert torch.equal(fused.pred_panoptic_seg.data, reference.pred_panoptic_seg.data)
    assert fused.pred_segments_info == segments
    assert fused.pred_panoptic_seg.data.shape == (1, ) + meta['ori_shape']
    labels = fused.pred_panoptic_seg.data[0]
    assert [s['area'] for s in segments] == [int((labels == s['id']).sum()) for s in segments]


def test_fused_panoptic_without_kept_queries_is_void(monkeypatch):
    model = tiny_segmentor(dict(mode='panoptic', object_mask_threshold=0.999)).eval()
    logits = crafted_logits(torch.Generator().manual_seed(3))
    monkeypatch.setattr(model.decode_head, 'last_layer_logits', lambda feats: logits)
    for impl in ('fused', 'reference'):
        result, = predict(model, impl, torch.randn(1, 3, 64, 64), METAS[1:2])
        assert result.pred_segments_info == []
        assert torch.equal(result.pred_panoptic_seg.data,
                           torch.zeros((1, ) + METAS[1]['ori_shape'], dtype=torch.long))
