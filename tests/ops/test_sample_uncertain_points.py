"""Mask2Former's importance sampling (sample_uncertain_points) and its Philox draws: the compiled
op against the reference, the reference against Random123's known answers and mmdet's sampler."""
import pytest
import torch

from mmseg_maskformer.ops import reference


def _assert_same_selection(points, expected, logits, by_position):
    """The same uncertain points, up to swaps at the selection boundary between candidates whose
    sampled |logit| are equal (topk chooses among them either way; bfloat16 samples tie often) or
    differ by float rounding alone (the kernels and grid_sample round their bilinear sums
    differently): identical in at least 99%, and equal sorted |logit| (rtol 1e-6)."""
    if torch.equal(by_position(points), by_position(expected)):
        return
    same = sum(len(set(map(tuple, a.tolist())) & set(map(tuple, b.tolist())))
               for a, b in zip(points, expected))
    assert same >= 0.99 * points.shape[0] * points.shape[1]

    def uncertainty(p):  # as the samplers rank them: sampled in the logits' dtype
        sampled = reference.point_sample(logits[:, None], p)[:, 0]
        return sampled.double().abs().sort(dim=1).values

    torch.testing.assert_close(uncertainty(points), uncertainty(expected), rtol=1e-6, atol=1e-7)


def _draw(module, logits, *args, seed=7):
    generator = torch.Generator(device=logits.device).manual_seed(seed)
    return module.sample_uncertain_points(logits, *args, generator=generator)


# Random123's kat_vectors (github.com/DEShawResearch/random123, tests/kat_vectors), the lines
# "philox4x32 10 <counter> <key> <output>".
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, ) * 4, (0xffffffff, ) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize('counter, key, expected', PHILOX_KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    words = reference.philox4x32_10(torch.tensor(counter, dtype=torch.int64), key)
    assert words.tolist() == list(expected)


def test_uniform_points_layout_and_statistics():
    """Word j of mask n is word j % 4 of the counter (j // 4, n, stream, 0); the points are
    uniform on [0, 1)² (Kolmogorov-Smirnov, fixed seed) and the streams and masks differ."""
    stats = pytest.importorskip('scipy.stats')
    seed = torch.tensor(0x123456789ABCDEF, dtype=torch.int64)
    points = reference.uniform_points(seed, 3, 50001, stream=1)
    assert points.shape == (3, 50001, 2) and points.dtype == torch.float32
    key = (0x89ABCDEF, 0x01234567)  # (low, high) 32 bits of the seed
    words = reference.philox4x32_10(torch.tensor([5, 2, 1, 0]), key)  # counter 5 of mask 2
    expected = (words >> 8).double() * 2.0**-24
    assert points[2, 10:12].flatten().double().tolist() == expected.tolist()
    for coordinate in (0, 1):
        values = points[..., coordinate].flatten().double().numpy()
        assert stats.kstest(values, 'uniform').pvalue > 1e-3
        assert 0 <= values.min() and values.max() < 1
    x, y = points[0, :, 0], points[0, :, 1]
    assert abs(torch.corrcoef(torch.stack([x, y]))[0, 1]) < 0.02
    other_stream = reference.uniform_points(seed, 3, 50001, stream=0)
    assert (other_stream != points).float().mean() > 0.999
    assert (points[0] != points[1]).float().mean() > 0.999


@pytest.mark.parametrize('shape, num_points, oversample_ratio, importance_sample_ratio', [
    ((3, 12, 10), 64, 3.0, 0.75), ((4, 5, 5), 10, 1.0, 1.0), ((2, 7, 9), 33, 2.5, 0.0),
    ((3, 12, 10), 63, 3.1, 0.5), ((2, 1, 1), 5, 3.0, 0.75), ((0, 4, 4), 8, 3.0, 0.75)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16])
def test_same_points_as_reference(fused, randn, device, shape, num_points, oversample_ratio,
                                  importance_sample_ratio, dtype, by_position):
    logits = randn(shape, scale=3.0).to(dtype)
    args = (num_points, oversample_ratio, importance_sample_ratio)
    points = _draw(fused, logits, *args)
    assert points.shape == (shape[0], num_points, 2) and points.dtype == torch.float32
    expected = _draw(reference, logits, *args)
    num_uncertain = int(importance_sample_ratio * num_points)
    # The same uniform points in the same order; the same uncertain set, in another order.
    assert torch.equal(points[:, num_uncertain:], expected[:, num_uncertain:])
    _assert_same_selection(points[:, :num_uncertain], expected[:, :num_uncertain], logits,
                           by_position)


def test_same_points_as_reference_at_mask2former_size(fused, randn, device, by_position):
    """12544 points, 3 × 12544 candidates per mask of a 128² map: the radix selection of the CPU
    kernel and CUDA's topk against the reference's topk."""
    logits = randn((6, 128, 128), scale=3.0)
    points = _draw(fused, logits, 12544, 3.0, 0.75)
    expected = _draw(reference, logits, 12544, 3.0, 0.75)
    assert torch.equal(points[:, 9408:], expected[:, 9408:])
    _assert_same_selection(points[:, :9408], expected[:, :9408], logits, by_position)


def test_selection_with_ties_at_mask2former_size(fused, device):
    """The selection the sampler runs (on the CPU a radix step, then nth_element within one bin)
    against an independent ranking by (|logit|, candidate index), NaN first: logits of few
    distinct values put thousands of ties across the selection boundary."""
    values = torch.tensor([0.5, -0.5, 0.25, 1.0, -2.0, 3e-39, float('nan'), -0.0])
    index = torch.randint(0, len(values), (3, 37632), generator=torch.Generator().manual_seed(1))
    logits = values[index]
    position = (torch.arange(37632, dtype=torch.float64) + 0.5) / 37632
    candidates = torch.stack([position, torch.full_like(position, 0.5)], -1).float()
    chosen = fused.select_uncertain_points(logits.to(device), candidates.expand(3, -1, -1).to(
        device), 9408)
    chosen_index = (chosen[..., 0].double().cpu() * 37632 - 0.5).round().long().sort(1).values
    magnitude = torch.where(logits.isnan(), -1.0, logits.abs())
    ranked = [sorted(range(37632), key=lambda c: (row[c], c)) for row in magnitude.tolist()]
    expected = torch.tensor([sorted(order[:9408]) for order in ranked])
    if device.type == 'cpu':
        assert torch.equal(chosen_index, expected)
    else:  # topk may choose either of equal |logit|
        assert torch.equal(magnitude.gather(1, chosen_index).sort(1).values,
                           magnitude.gather(1, expected).sort(1).values)


def test_seed_comes_from_the_generator(fused, randn, device):
    """One draw from the generator per call: the same generator state gives the same points,
    ``torch.manual_seed`` governs calls without a generator, and the state after a call is that
    after one ``torch.randint`` (what a resumed run restores)."""
    logits = randn((2, 8, 8))
    first, again = _draw(fused, logits, 20, seed=3), _draw(fused, logits, 20, seed=3)
    assert torch.equal(first, again)
    assert not torch.equal(first, _draw(fused, logits, 20, seed=4))
    torch.manual_seed(11)
    default = fused.sample_uncertain_points(logits, 20)
    torch.manual_seed(11)
    assert torch.equal(default, fused.sample_uncertain_points(logits, 20))
    generator = torch.Generator(device=device).manual_seed(5)
    fused.sample_uncertain_points(logits, 20, generator=generator)
    twin = torch.Generator(device=device).manual_seed(5)
    torch.randint(0, 2**63 - 1, (), device=device, generator=twin)
    assert torch.equal(torch.rand(4, device=device, generator=generator),
                       torch.rand(4, device=device, generator=twin))


def test_independent_of_thread_count(fused, randn, device):
    if device.type != 'cpu':
        pytest.skip('CPU threads only')
    logits = randn((9, 40, 40), scale=3.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _draw(fused, logits, 2000)
        torch.set_num_threads(4)
        four = _draw(fused, logits, 2000)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, four)  # order included: each mask is one task


def test_follows_mmdet_sampler(by_position):
    """mmdet's get_uncertain_point_coords_with_randomness (Mask2Former's sampler) given our
    uniform draws in place of torch.rand chooses the same points."""
    mmdet_point_sample = pytest.importorskip('mmdet.models.utils.point_sample')
    logits = 3 * torch.randn(4, 12, 10, generator=torch.Generator().manual_seed(0))
    seed = reference.draw_seed(logits.device, torch.Generator().manual_seed(7))
    draws = iter([reference.uniform_points(seed, 4, 150, reference.CANDIDATE_STREAM),
                  reference.uniform_points(seed, 4, 50 - 37, reference.RANDOM_POINT_STREAM)])
    rand = torch.rand

    def our_draws(*shape, **kwargs):
        expected = next(draws)
        assert tuple(shape) == tuple(expected.shape)
        return expected

    try:
        torch.rand = our_draws
        expected = mmdet_point_sample.get_uncertain_point_coords_with_randomness(
            logits[:, None], None, 50, 3.0, 0.75)
    finally:
        torch.rand = rand
    got = _draw(reference, logits, 50, 3.0, 0.75)
    torch.testing.assert_close(by_position(got), by_position(expected), rtol=0, atol=0)


@pytest.mark.parametrize('args, message', [
    (((2, 5), 10, 3.0, 0.75), 'mask_logits must have 3 dimensions'),
    (((2, 5, 0), 10, 3.0, 0.75), r'non-empty \(h, w\)'),
    (((2, 5, 5), 0, 3.0, 0.75), 'num_points must be a positive integer'),
    (((2, 5, 5), 10, 0.5, 0.75), 'oversample_ratio must be >= 1'),
    (((2, 5, 5), 10, 3.0, 1.5), r'importance_sample_ratio must be in \[0, 1\]'),
    (((2, 5, 5), 2**30, 3.0, 0.75), 'at most 2\\^31 - 1 candidates'),
])
def test_rejects_bad_inputs(fused, device, args, message):
    shape, *rest = args
    logits = torch.zeros(shape, device=device)
    for module in (reference, fused):
        with pytest.raises(ValueError, match=message):
            module.sample_uncertain_points(logits, *rest)
    with pytest.raises(TypeError, match='must be float32, float16, bfloat16 or float64'):
        fused.sample_uncertain_points(torch.zeros(2, 5, 5, dtype=torch.int64, device=device), 10)


@pytest.mark.parametrize('seed, counts, message', [
    (torch.tensor([1]), (10, 30, 7), 'seed must be a 0-dim int64 tensor'),
    (torch.tensor(1.0), (10, 30, 7), 'seed must be a 0-dim int64 tensor'),
    (torch.tensor(1), (10, 5, 7), r'num_uncertain must be in \[0, min\(num_points, '
     r'num_candidates\)\] = \[0, 5\]'),
    (torch.tensor(1), (0, 5, 0), 'num_points must be positive'),
])
def test_kernel_checks_direct_calls(fused, device, seed, counts, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmseg_maskformer.sample_uncertain_points(torch.zeros(2, 5, 5, device=device),
                                                           seed.to(device), *counts)
