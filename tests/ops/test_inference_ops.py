"""The inference ops (semantic scores, semantic labels, panoptic assignment): compiled vs. the
PyTorch reference, registration and input validation."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer import ops
from mmseg_maskformer.ops import reference

from extension_testing import skip_or_fail_without_extension

pytestmark = pytest.mark.filterwarnings('ignore:.*torch.jit.script_method.*:DeprecationWarning')

# (Q, K, mask size, input size): odd sizes, upsampling by 4 and by odd factors, downsampling,
# equal sizes, one query, one class, ADE20K-Full's 847 classes.
SCORE_CASES = [
    (7, 5, (9, 13), (36, 52)),
    (3, 4, (10, 7), (37, 23)),
    (5, 6, (17, 19), (8, 9)),
    (4, 3, (6, 6), (6, 6)),
    (1, 4, (5, 8), (20, 32)),
    (6, 1, (5, 8), (20, 31)),
    (10, 847, (8, 11), (32, 43)),
]

# (input size, crop (top, left, height, width), output size, flip, align_corners)
GEOMETRIES = [
    ((36, 52), None, (36, 52), None, False),  # no crop, no resize
    ((36, 52), (0, 0, 30, 41), (61, 83), 'horizontal', False),  # padding crop, upscale
    ((36, 52), (0, 0, 36, 48), (15, 20), 'vertical', False),  # downscale
    ((36, 52), (2, 3, 30, 40), (45, 31), None, True),  # both ways, align_corners
    ((36, 52), (0, 0, 35, 50), (35, 50), 'horizontal', False),  # crop only
    ((36, 52), (0, 0, 36, 52), (1, 1), None, False),  # one pixel
]


def _logits(randn, queries, num_classes, mask_size, batch=None, dtype=torch.float32):
    lead = () if batch is None else (batch, )
    cls_logits = randn(lead + (queries, num_classes + 1), scale=3.0).to(dtype)
    mask_logits = randn(lead + (queries, ) + tuple(mask_size), scale=4.0).to(dtype)
    return cls_logits, mask_logits


def _margin(scores, dim):
    """Gap between the best and second-best value along dim (inf with one entry)."""
    if scores.shape[dim] == 1:
        return torch.full_like(scores.select(dim, 0), float('inf'))
    top2 = scores.topk(2, dim=dim).values
    return top2.select(dim, 0) - top2.select(dim, 1)


def _reference_chain_scores(cls_logits, mask_logits, input_size, crop, output_size, flip,
                            align_corners):
    """The (K, H, W) scores of the whole chain, literally: what the labels are the arg-max of."""
    scores = reference.semantic_scores(cls_logits[None].double(), mask_logits[None].double(),
                                       input_size)
    if crop is not None:
        top, left, height, width = crop
        scores = scores[:, :, top:top + height, left:left + width]
    if flip:
        scores = scores.flip(-1 if flip == 'horizontal' else -2)
    return F.interpolate(scores, size=output_size, mode='bilinear',
                         align_corners=align_corners)[0]


@pytest.mark.parametrize('queries,num_classes,mask_size,size', SCORE_CASES)
def test_semantic_scores_match_reference(fused, randn, queries, num_classes, mask_size, size):
    cls_logits, mask_logits = _logits(randn, queries, num_classes, mask_size, batch=2)
    got = fused.semantic_scores(cls_logits, mask_logits, size)
    want = reference.semantic_scores(cls_logits, mask_logits, size)
    assert got.dtype == want.dtype == torch.float32
    assert got.shape == want.shape == (2, num_classes) + size
    torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-6)


def test_semantic_scores_are_the_soft_sum_of_the_paper(randn):
    # The reference against the formula written out: Σ_q softmax(cls_q)[c] · σ(up(m_q)).
    cls_logits, mask_logits = _logits(randn, 3, 2, (4, 5), batch=1)
    up = F.interpolate(mask_logits, size=(8, 10), mode='bilinear', align_corners=False)
    probs = cls_logits.softmax(-1)[0, :, :-1]
    want = sum(probs[q][:, None, None] * up[0, q].sigmoid() for q in range(3))
    torch.testing.assert_close(reference.semantic_scores(cls_logits, mask_logits, (8, 10))[0],
                               want)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_semantic_scores_compute_in_float32_or_float64(fused, randn, dtype):
    cls_logits, mask_logits = _logits(randn, 5, 4, (7, 9), batch=1, dtype=dtype)
    got = fused.semantic_scores(cls_logits, mask_logits, (25, 31))
    # Half-precision logits are read as they are and computed in float32, as the reference does.
    want = reference.semantic_scores(cls_logits, mask_logits, (25, 31))
    assert got.dtype == want.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    tolerance = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize('geometry', GEOMETRIES)
@pytest.mark.parametrize('queries,num_classes', [(7, 5), (1, 3), (4, 1), (6, 847)])
def test_semantic_labels_match_reference_except_ties(fused, randn, geometry, queries,
                                                     num_classes):
    input_size, crop, output_size, flip, align_corners = geometry
    cls_logits, mask_logits = _logits(randn, queries, num_classes, (9, 13))
    args = (input_size, output_size, crop, flip, align_corners)
    labels, best = fused.semantic_labels(cls_logits, mask_logits, *args, return_scores=True)
    want_labels, want_best = reference.semantic_labels(cls_logits, mask_logits, *args,
                                                       return_scores=True)
    assert labels.shape == want_labels.shape == output_size and labels.dtype == torch.long
    torch.testing.assert_close(best, want_best, rtol=1e-5, atol=2e-6)
    exact = _reference_chain_scores(cls_logits, mask_logits, input_size, crop, output_size, flip,
                                    align_corners)
    clear = _margin(exact, 0) > 1e-5
    assert clear.float().mean() > 0.9  # the comparison covers most pixels
    assert torch.equal(labels[clear], want_labels[clear])
    assert torch.equal(want_labels[clear], exact.argmax(0)[clear])


def test_semantic_labels_equal_maxima_give_the_lowest_class(fused):
    # Classes 1 and 2 have equal probabilities in every query: their scores tie exactly.
    cls_logits = torch.tensor([[0.0, 2.0, 2.0, -1.0], [1.0, 3.0, 3.0, 0.0]])
    mask_logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    for impl in (fused, reference):
        labels = impl.semantic_labels(cls_logits, mask_logits, (8, 10), (11, 7))
        assert torch.equal(labels, torch.ones(11, 7, dtype=torch.long))


def test_semantic_labels_of_half_logits_are_computed_in_float32(fused, randn):
    cls_logits, mask_logits = _logits(randn, 5, 4, (7, 9), dtype=torch.bfloat16)
    labels, best = fused.semantic_labels(cls_logits, mask_logits, (28, 36), (20, 30),
                                         return_scores=True)
    want_labels, want_best = reference.semantic_labels(cls_logits.float(), mask_logits.float(),
                                                       (28, 36), (20, 30), return_scores=True)
    assert best.dtype == torch.float32
    torch.testing.assert_close(best, want_best, rtol=1e-5, atol=2e-6)
    exact = _reference_chain_scores(cls_logits.float(), mask_logits.float(), (28, 36), None,
                                    (20, 30), None, False)
    clear = _margin(exact, 0) > 1e-5
    assert torch.equal(labels[clear], want_labels[clear])


@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_panoptic_assignment_matches_reference(fused, randn, geometry):
    input_size, crop, output_size, flip, align_corners = geometry
    mask_logits = randn((6, 9, 13), scale=4.0)
    scores = torch.linspace(0.81, 0.99, 6, dtype=torch.float32).to(mask_logits.device)
    args = (input_size, output_size, crop, flip, align_corners)
    owner, won, area = fused.panoptic_assignment(mask_logits, scores, *args)
    want_owner, want_won, want_area = reference.panoptic_assignment(mask_logits, scores, *args)
    assert owner.dtype == won.dtype == area.dtype == torch.long
    assert torch.equal(owner, want_owner)
    assert torch.equal(won, want_won) and torch.equal(area, want_area)
    assert int(won.sum()) == output_size[0] * output_size[1]


def test_panoptic_assignment_hand_case(fused):
    # Two queries on a 2x2 map, no resampling: query 1's higher score wins where both are sure.
    mask_logits = torch.tensor([[[5.0, 5.0], [-5.0, 5.0]], [[5.0, -5.0], [-5.0, 0.0]]])
    scores = torch.tensor([0.85, 0.9])
    for impl in (fused, reference):
        owner, won, area = impl.panoptic_assignment(mask_logits, scores, (2, 2), (2, 2))
        # (0, 0) and (1, 0): equal masks, the higher score wins; (0, 1): 0.85 σ(5) > 0.9 σ(-5);
        # (1, 1): 0.85 σ(5) > 0.9 σ(0). σ(0) = 0.5 counts in query 1's area.
        assert owner.tolist() == [[1, 0], [1, 0]]
        assert won.tolist() == [2, 2] and area.tolist() == [3, 2]


def test_opcheck_inference_ops(fused, randn, device):
    cls_logits, mask_logits = _logits(randn, 4, 3, (5, 7), batch=2)
    op = torch.ops.mmseg_maskformer
    torch.library.opcheck(op.semantic_scores.default, (cls_logits, mask_logits, 11, 13))
    torch.library.opcheck(op.semantic_labels.default,
                          (cls_logits[0], mask_logits[0], [20, 28], [0, 0, 18, 27], [25, 30],
                           True, False, False))
    scores = torch.rand(4, generator=torch.Generator().manual_seed(1)).to(device)
    torch.library.opcheck(op.panoptic_assignment.default,
                          (mask_logits[0], scores, [20, 28], [1, 2, 18, 25], [9, 13], False, True,
                           True))


def test_compiled_inference_ops_have_no_backward(fused, randn):
    cls_logits, mask_logits = _logits(randn, 4, 3, (5, 7), batch=1)
    mask_logits.requires_grad_()
    scores = fused.semantic_scores(cls_logits, mask_logits, (10, 14))
    with pytest.raises(RuntimeError, match='no backward'):
        scores.sum().backward()


def test_top_level_inference_dispatch(fused, randn, device):
    cls_logits, mask_logits = _logits(randn, 4, 3, (5, 7), batch=1)
    assert ops.inference_backend(None, device) is ops.fused
    assert ops.inference_backend('reference', device) is ops.reference
    assert ops.inference_backend('fused', device) is ops.fused
    with pytest.raises(ValueError, match="impl must be 'fused', 'reference' or None"):
        ops.inference_backend('fast', device)
    torch.testing.assert_close(ops.semantic_scores(cls_logits, mask_logits, (9, 9)),
                               fused.semantic_scores(cls_logits, mask_logits, (9, 9)),
                               rtol=0, atol=0)


@pytest.mark.parametrize('impl', ['fused', 'reference'])
def test_inference_ops_reject_bad_inputs(impl, device):
    if impl == 'fused':
        skip_or_fail_without_extension(device.type)
    module = getattr(ops, impl)
    cls_logits = torch.randn(4, 6, device=device)
    mask_logits = torch.randn(4, 5, 7, device=device)
    cases = [
        (lambda: module.semantic_scores(cls_logits, mask_logits, (9, 9)),
         'cls_logits must have 3 dimensions'),
        (lambda: module.semantic_scores(cls_logits[None], mask_logits[None, :3], (9, 9)),
         'must hold the same images and queries'),
        (lambda: module.semantic_scores(cls_logits[None, :, :1], mask_logits[None], (9, 9)),
         'K\\+1 >= 2'),
        (lambda: module.semantic_scores(cls_logits[None], mask_logits[None], (0, 9)),
         'size must be positive'),
        (lambda: module.semantic_labels(cls_logits, mask_logits[:2], (9, 9), (9, 9)),
         'must hold the same queries'),
        (lambda: module.semantic_labels(cls_logits, mask_logits, (9, 9), (9, 9), (0, 0, 10, 9)),
         'crop must be'),
        (lambda: module.semantic_labels(cls_logits, mask_logits, (9, 9), (9, 9), flip='up'),
         'flip must be'),
        (lambda: module.semantic_labels(cls_logits.long(), mask_logits, (9, 9), (9, 9)),
         'cls_logits must be float32'),
        (lambda: module.semantic_labels(cls_logits, mask_logits.masked_fill(
            torch.zeros_like(mask_logits, dtype=torch.bool).index_fill_(2, torch.tensor([3],
                                                                                 device=device),
                                                                        True), float('nan')),
            (9, 9), (9, 9)), 'mask_logits holds non-finite values'),
        (lambda: module.semantic_labels(cls_logits.index_fill(1, torch.tensor([0], device=device),
                                                              float('inf')), mask_logits,
                                        (9, 9), (9, 9)), 'cls_logits holds non-finite values'),
        (lambda: module.panoptic_assignment(mask_logits, torch.rand(3, device=device), (9, 9),
                                            (9, 9)), r'scores must be a floating \(4,\) tensor'),
        (lambda: module.panoptic_assignment(mask_logits[:0], torch.rand(0, device=device), (9, 9),
                                            (9, 9)), 'at least one query'),
    ]
    for call, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            call()


def test_kernels_check_direct_calls(fused, device):
    op = torch.ops.mmseg_maskformer
    mask_logits = torch.randn(4, 5, 7, device=device)
    with pytest.raises(RuntimeError, match='K\\+1 >= 2'):
        op.semantic_labels(torch.randn(4, 1, device=device), mask_logits, [9, 9], [0, 0, 9, 9],
                           [9, 9], False, False, False)
    with pytest.raises(RuntimeError, match='crop must be'):
        op.panoptic_assignment(mask_logits, torch.rand(4, device=device), [9, 9], [0, 0, 9, 10],
                               [9, 9], False, False, False)
    with pytest.raises(RuntimeError, match='same queries'):
        op.semantic_scores(torch.randn(1, 3, 4, device=device), mask_logits[None], 9, 9)
