"""Kernel paths the other tests do not pin down: a seeded fuzz of the loss and cost ops over
shapes, dtypes, strides and value ranges; independence from the thread count; the portable
(non-AVX2) CPU kernels, which hold the stencil code the CUDA kernels share."""
import os
import subprocess
import sys

import pytest
import torch

from mmseg_maskformer.ops import reference

HERE = os.path.dirname(os.path.abspath(__file__))

# (N, h, w) logits with (H, W) targets: 1x1, primes, and H * W > 65536 so that the vectorised
# CPU kernels split a mask into several row blocks.
FUZZ_SHAPES = [((2, 1, 1), (1, 1)), ((3, 1, 1), (7, 5)), ((2, 13, 11), (13, 11)),
               ((3, 7, 5), (31, 29)), ((2, 17, 3), (5, 41)), ((1, 37, 41), (11, 13)),
               ((2, 1, 9), (3, 97)), ((2, 67, 71), (263, 257))]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def _case(rng, device):
    """One random (logits, targets, valid, kwargs) case; rng is a seeded Generator."""

    def pick(options):
        return options[int(torch.randint(len(options), (1, ), generator=rng))]

    logit_shape, size = pick(FUZZ_SHAPES)
    dtype = pick(DTYPES)
    scale = pick([0.1, 3.0, 30.0, 1e4])
    logits = scale * torch.randn(logit_shape, generator=rng, dtype=torch.float64)
    if pick([False, True]):  # transposed storage, same logical shape
        logits = logits.transpose(1, 2).contiguous().transpose(1, 2)
    shape = (logit_shape[0], ) + size
    target_kind = pick(['empty', 'full', 'bool', 'soft'])
    values = torch.rand(shape, generator=rng)
    targets = {'empty': torch.zeros(shape, dtype=torch.bool),
               'full': torch.ones(shape, dtype=torch.bool),
               'bool': values > 0.5, 'soft': values}[target_kind]
    if pick([False, True]):  # a strided view of a larger map
        targets = torch.cat([targets, targets], dim=2)[:, :, ::2]
    valid = pick([None, 'bool', 'soft', 'expanded'])
    if valid == 'bool':
        valid = torch.rand(shape, generator=rng) > 0.3
    elif valid == 'soft':
        valid = torch.rand(shape, generator=rng)
    elif valid == 'expanded':
        valid = (torch.rand(size, generator=rng) > 0.3).expand(shape)
    kwargs = dict(alpha=pick([0.25, -1.0, 0.9]), gamma=pick([2.0, 0.5, 0.0]), eps=pick([1.0, 0.1]))
    to = dict(device=device)
    return (logits.to(dtype=dtype, **to), targets.to(**to),
            None if valid is None else valid.to(**to), kwargs)


def _loss_and_grad(fn, logits, targets, valid, kwargs):
    x = logits.detach().requires_grad_()
    focal, dice = fn(x, targets, valid=valid, **kwargs)
    weights = torch.linspace(0.5, 1.5, 2 * len(focal), dtype=focal.dtype, device=focal.device)
    loss = (weights[:len(focal)] * focal).sum() + (weights[len(focal):] * dice).sum()
    grad, = torch.autograd.grad(loss, x)
    return focal.detach(), dice.detach(), grad


def test_fuzz_against_reference(fused, device):
    rng = torch.Generator().manual_seed(2024)
    for index in range(128):
        logits, targets, valid, kwargs = _case(rng, device)
        label = (f'case {index}: {logits.dtype} {tuple(logits.shape)} -> {tuple(targets.shape)}, '
                 f'valid {None if valid is None else valid.dtype}, {kwargs}')
        focal, dice, grad = _loss_and_grad(fused.sigmoid_focal_dice_loss, logits, targets, valid,
                                           kwargs)
        ref = _loss_and_grad(reference.sigmoid_focal_dice_loss, logits, targets, valid, kwargs)
        double = logits.dtype == torch.float64
        loss_tol = dict(rtol=1e-10, atol=1e-12) if double else dict(rtol=1e-5, atol=1e-6)
        torch.testing.assert_close((focal, dice), ref[:2], **loss_tol, msg=lambda m: label + m)
        assert torch.isfinite(grad).all(), label
        # gamma < 1: the reference's autograd of (1 - p_t)^gamma is inf * 0 where p_t -> 1.
        if torch.isfinite(ref[2]).all():
            grad_tol = dict(rtol=1e-9, atol=1e-12) if double else (
                dict(rtol=1e-4, atol=1e-4 * float(ref[2].abs().max()) + 1e-7)
                if logits.dtype == torch.float32 else {})
            torch.testing.assert_close(grad, ref[2], **grad_tol, msg=lambda m: label + m)
        cost_valid = None if valid is None else valid[0]
        costs = fused.pairwise_mask_costs(logits, targets, valid=cost_valid, **kwargs)
        ref_costs = reference.pairwise_mask_costs(logits, targets, valid=cost_valid, **kwargs)
        torch.testing.assert_close(costs, ref_costs, **loss_tol, msg=lambda m: label + m)


@pytest.mark.parametrize('with_valid', [False, True])
def test_results_independent_of_thread_count(fused, device, with_valid):
    """Bitwise the same with 1 and 2 threads, on masks of several blocks of pixels."""
    if device.type != 'cpu':
        pytest.skip('CPU threads')
    g = torch.Generator().manual_seed(7)
    logits = 3 * torch.randn(3, 67, 71, generator=g)
    targets = torch.rand(3, 263, 257, generator=g) > 0.5
    valid = (torch.rand(263, 257, generator=g) > 0.2).expand(3, -1, -1) if with_valid else None
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(_loss_and_grad(fused.sigmoid_focal_dice_loss, logits, targets, valid,
                                          {}) +
                           fused.pairwise_mask_costs(logits, targets,
                                                     valid=None if valid is None else valid[0]))
            same_size = (targets[:, :67, :71], None if valid is None else valid[:, :67, :71])
            results.append(_loss_and_grad(fused.sigmoid_focal_dice_loss, logits, *same_size, {}))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(results[:2], results[2:]):
        for x, y in zip(a, b):
            assert torch.equal(x, y)


@pytest.mark.skipif(os.environ.get('ATEN_CPU_CAPABILITY') == 'default',
                    reason='already the portable kernels')
def test_portable_cpu_kernels(fused, device):
    """The non-AVX2 kernels (ATEN_CPU_CAPABILITY=default) against the reference, in a
    subprocess: the capability is read once per process. Their resize backward is the two-pass
    stencil of kernel_math.h that the CUDA kernels run."""
    if device.type != 'cpu':
        pytest.skip('CPU kernels')
    env = dict(os.environ, ATEN_CPU_CAPABILITY='default', OMP_NUM_THREADS='2',
               PYTHONPATH=os.pathsep.join(sys.path))
    probe = subprocess.run([sys.executable, '-c', 'import torch; '
                            'print(torch.backends.cpu.get_cpu_capability())'],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == 'DEFAULT', probe.stdout
    tests = [os.path.join(HERE, name) for name in (
        'test_sigmoid_focal_dice_loss.py', 'test_pairwise_mask_costs.py', 'test_valid.py',
        'test_kernel_paths.py')]
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider', '-k',
         'cpu and (matches_reference or gradcheck or realistic or expanded or thread_count or '
         'point_form or dtypes or non_contiguous or saturated)'] + tests,
        env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert ' passed' in result.stdout


@pytest.mark.parametrize('with_valid', [False, True])
def test_cuda_agrees_with_cpu_on_large_masks(fused, device, with_valid):
    """Sums of millions of pixels: CUDA (double block partials) and CPU (double row partials)
    agree on 1024x2048 masks to the tolerance they have at 128x128."""
    if device.type != 'cuda':
        pytest.skip('compares the CUDA kernels with the CPU ones')
    g = torch.Generator().manual_seed(11)
    for low, high in (((32, 32), (128, 128)), ((256, 512), (1024, 2048))):
        logits = 3 * torch.randn((2, ) + low, generator=g)
        targets = torch.rand((2, ) + high, generator=g) > 0.5
        valid = (torch.rand(high, generator=g) > 0.2).expand(2, -1, -1) if with_valid else None
        on_cpu = _loss_and_grad(fused.sigmoid_focal_dice_loss, logits, targets, valid, {})
        on_gpu = _loss_and_grad(fused.sigmoid_focal_dice_loss, logits.to(device),
                                targets.to(device), None if valid is None else valid.to(device),
                                {})
        torch.testing.assert_close(tuple(t.cpu() for t in on_gpu[:2]), on_cpu[:2], rtol=1e-5,
                                   atol=1e-6)
        torch.testing.assert_close(on_gpu[2].cpu(), on_cpu[2], rtol=1e-4,
                                   atol=1e-4 * float(on_cpu[2].abs().max()))
