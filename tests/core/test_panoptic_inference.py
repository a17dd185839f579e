from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import MaskFormerImageProcessor

from mmseg_maskformer.core.inference import panoptic_inference


def logits_for(probabilities):
    """Class logits whose softmax is ``probabilities`` (rows sum to 1)."""
    return torch.log(torch.tensor(probabilities))


def test_hand_computed_case():
    # 3 classes + ∅; class 0 and 1 are stuff, class 2 is a thing. 1×6 image.
    cls_logits = logits_for([
        [0.9, 0.05, 0.03, 0.02],  # q0: stuff 0, score 0.9
        [0.02, 0.03, 0.85, 0.10],  # q1: thing 2, score 0.85
        [0.88, 0.04, 0.04, 0.04],  # q2: stuff 0 again, score 0.88 -> merged with q0
        [0.10, 0.10, 0.10, 0.70],  # q3: ∅ -> dropped
        [0.05, 0.83, 0.06, 0.06],  # q4: stuff 1, wins 1 px of its 2-px mask -> 0.5 < 0.8, dropped
    ])
    big, small = 10.0, -10.0
    mask_logits = torch.tensor([
        [big, big, small, small, small, small],
        [small, small, big, big, small, small],
        [small, small, small, small, big, small],
        [big, big, big, big, big, big],
        [small, small, small, small, small, big],
    ])[:, None, :] * torch.ones(1, 1, 1)
    mask_logits[4, 0, 4] = big  # q4 also covers pixel 4, which q2 wins (0.88 > 0.83)
    seg, info = panoptic_inference(cls_logits, mask_logits, 0.8, 0.8, thing_classes=[2])
    assert seg.dtype == torch.int64 and seg.shape == (1, 6)
    assert seg[0].tolist() == [1, 1, 2, 2, 1, 0]
    assert info == [
        dict(id=1, category_id=0, isthing=False, area=3),
        dict(id=2, category_id=2, isthing=True, area=2),
    ]


def test_numpy_inputs_give_the_hand_computed_result_as_numpy():
    # The hand-computed case above, as float32 numpy arrays (what onnxruntime returns).
    cls_logits = logits_for([[0.9, 0.05, 0.03, 0.02], [0.02, 0.03, 0.85, 0.10],
                             [0.10, 0.10, 0.10, 0.70]]).numpy()
    mask_logits = torch.tensor([[10.0, 10, -10, -10], [-10, -10, 10, 10],
                                [10, 10, 10, 10]])[:, None, :].numpy()
    seg, info = panoptic_inference(cls_logits, mask_logits, 0.8, 0.8, thing_classes=[2])
    assert isinstance(seg, np.ndarray) and seg.dtype == np.int64
    assert seg.tolist() == [[1, 1, 2, 2]]
    assert info == [dict(id=1, category_id=0, isthing=False, area=2),
                    dict(id=2, category_id=2, isthing=True, area=2)]


def test_everything_void_when_no_query_passes_threshold():
    seg, info = panoptic_inference(torch.zeros(4, 3), torch.randn(4, 5, 5), 0.8, 0.8)
    assert info == [] and int(seg.abs().sum()) == 0


@pytest.mark.parametrize('seed', range(8))
def test_equals_transformers_post_processing_on_random_logits(seed):
    # Differences documented in README: transformers drops a segment when area ratio <= threshold
    # (official: <), measures the original area on score·σ(m) >= 0.5 (official: σ(m) >= 0.5) and
    # re-uses ids after fusing stuff. Logits away from 0 and no fused classes make the rules agree.
    g = torch.Generator().manual_seed(seed)
    queries, classes = 12, 5
    cls_logits = 4 * torch.randn(queries, classes + 1, generator=g)
    coarse = torch.randn(queries, 1, 6, 6, generator=g)
    coarse = torch.nn.functional.interpolate(coarse, size=(24, 24), mode='bilinear')[:, 0]
    mask_logits = torch.sign(coarse) * (coarse.abs() + 1) * 10
    seg, info = panoptic_inference(cls_logits, mask_logits, 0.5, 0.8, thing_classes=range(classes))
    outputs = SimpleNamespace(class_queries_logits=cls_logits[None], masks_queries_logits=mask_logits[None])
    hf = MaskFormerImageProcessor().post_process_panoptic_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, overlap_mask_area_threshold=0.8,
        label_ids_to_fuse=set())[0]
    if not hf['segments_info']:
        assert not info
        return
    assert seg.tolist() == hf['segmentation'].long().tolist()
    assert [(s['id'], s['category_id']) for s in info] == [
        (s['id'], s['label_id']) for s in hf['segments_info']]


def test_transformers_strict_overlap_rule_differs_at_equality():
    # One query wins exactly 3 of its 4 mask pixels: ratio 0.75 == overlap_threshold (a ratio
    # exact in float32; with 4/5 vs 0.8 float32 rounding happens to make transformers keep it).
    cls_logits = logits_for([[0.95, 0.03, 0.02], [0.02, 0.96, 0.02]])
    mask_logits = torch.full((2, 1, 4), -10.0)
    mask_logits[0] = 10.0
    mask_logits[1, 0, 0] = 10.0  # query 1 (score .96) takes pixel 0 from query 0
    seg, info = panoptic_inference(cls_logits, mask_logits, 0.8, 0.75, thing_classes=[0, 1])
    assert [s['category_id'] for s in info] == [0, 1]  # official keeps query 0 (not 0.75 < 0.75)
    hf = MaskFormerImageProcessor().post_process_panoptic_segmentation(
        SimpleNamespace(class_queries_logits=cls_logits[None], masks_queries_logits=mask_logits[None]),
        threshold=0.8, overlap_mask_area_threshold=0.75, label_ids_to_fuse=set())[0]
    assert [s['label_id'] for s in hf['segments_info']] == [1]  # transformers drops it


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match='expected'):
        panoptic_inference(torch.zeros(3, 4), torch.zeros(2, 5, 5))
