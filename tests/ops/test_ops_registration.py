"""Operator registration (opcheck, torch.compile), dispatch, fallback and input validation."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmseg_maskformer import ops
from mmseg_maskformer.ops import _extension, reference

# opcheck's internals use a deprecated torch.jit API.
pytestmark = pytest.mark.filterwarnings('ignore:.*torch.jit.script_method.*:DeprecationWarning')

REQUIRE_EXTENSION = os.environ.get('MMSEG_MASKFORMER_REQUIRE_EXTENSION', '0') == '1'


@pytest.mark.skipif(not REQUIRE_EXTENSION, reason='MMSEG_MASKFORMER_REQUIRE_EXTENSION is not 1')
def test_extension_is_available():
    assert ops.extension_available(), _extension.load_error()


def _op(name):
    return getattr(torch.ops.mmseg_maskformer, name).default


def test_opcheck_sigmoid_focal_dice_loss(fused, randn, make_targets, generator, device):
    cases = [
        (randn((3, 5, 6)), make_targets('uint8', (3, 11, 13))),
        (randn((4, 9), dtype=torch.float16), make_targets('soft', (4, 9))),
    ]
    for logits, targets in cases:
        torch.library.opcheck(_op('sigmoid_focal_dice_loss'),
                              (logits.requires_grad_(), targets, 0.25, 2.0, 1.0))
    logits, targets = cases[0]
    values = torch.rand((3, 5), generator=generator).to(device)  # sums, grad_focal, grad_dice
    torch.library.opcheck(_op('sigmoid_focal_dice_loss_backward'),
                          (values[:, 3], values[:, 4], logits.detach(), targets, values[:, :3],
                           0.25, 2.0, 1.0))


def test_opcheck_pairwise_mask_costs(fused, randn, make_targets):
    for logits, targets in [(randn((4, 6, 5)), make_targets('bool', (3, 12, 10))),
                            (randn((5, 8), dtype=torch.bfloat16), make_targets('soft', (2, 8)))]:
        torch.library.opcheck(_op('pairwise_mask_costs'), (logits, targets, 0.25, 2.0, 1.0))


def test_opcheck_point_sample(fused, randn, generator, device):
    inputs = randn((2, 3, 7, 9)).requires_grad_()
    points = torch.rand(2, 5, 2, generator=generator).to(device)
    torch.library.opcheck(_op('point_sample'), (inputs, points, False))
    torch.library.opcheck(_op('point_sample_backward'),
                          (randn((2, 3, 5)), points, 7, 9, True))


def test_opcheck_select_uncertain_points(fused, randn, generator, device):
    candidates = torch.rand(3, 40, 2, generator=generator).to(device)
    torch.library.opcheck(_op('select_uncertain_points'), (randn((3, 40)), candidates, 10))


def test_opcheck_sample_uncertain_points(fused, randn, device):
    seed = torch.tensor(12345, device=device)
    torch.library.opcheck(_op('sample_uncertain_points'), (randn((3, 6, 7)), seed, 20, 60, 15))


def test_torch_compile_fullgraph(fused, randn, make_targets, generator, device):
    """The ops trace as opaque custom ops with fake kernels and autograd: one graph."""

    def step(mask_logits, targets, features, points):
        focal_cost, dice_cost = fused.pairwise_mask_costs(mask_logits.detach(), targets)
        focal, dice = fused.sigmoid_focal_dice_loss(mask_logits, targets)
        sampled = fused.point_sample(features, points)
        return 20 * focal.sum() + dice.sum() + sampled.square().mean(), focal_cost + dice_cost

    compiled = torch.compile(step, fullgraph=True, backend='aot_eager')
    # bool targets: the uint8 range check of the validation reads a value, a graph break.
    args = (randn((3, 6, 5)), make_targets('bool', (3, 12, 10)), randn((3, 4, 6, 5)),
            torch.rand(3, 7, 2, generator=generator).to(device))
    grads, results = [], []
    for fn in (step, compiled):
        leaves = [args[0].clone().requires_grad_(), args[2].clone().requires_grad_()]
        loss, costs = fn(leaves[0], args[1], leaves[1], args[3])
        grads.append(torch.autograd.grad(loss, leaves))
        results.append((loss.detach(), costs))
    torch.testing.assert_close(results[1], results[0])
    torch.testing.assert_close(grads[1], grads[0])


def test_torch_compile_inductor(fused, randn, make_targets, generator, device):
    # Nothing but the custom ops inside the graph: inductor then has no kernel of its own to
    # generate and compile, which would take minutes on a small CPU.
    def step(mask_logits, targets, features, points):
        return (*fused.sigmoid_focal_dice_loss(mask_logits, targets),
                fused.point_sample(features, points))

    args = (randn((2, 4, 4)), make_targets('bool', (2, 9, 7)), randn((2, 3, 5, 6)),
            torch.rand(2, 7, 2, generator=generator).to(device))
    grads = []
    for fn in (step, torch.compile(step, fullgraph=True)):
        leaves = [args[0].clone().requires_grad_(), args[2].clone().requires_grad_()]
        focal, dice, sampled = fn(leaves[0], args[1], leaves[1], args[3])
        loss = focal.sum() + 2 * dice.sum() + sampled.sum()
        grads.append((loss.detach(), *torch.autograd.grad(loss, leaves)))
    torch.testing.assert_close(grads[1], grads[0])


def test_top_level_dispatches_to_compiled_ops(fused, randn, make_targets, device):
    logits, targets = randn((3, 4, 5)), make_targets('bool', (3, 8, 9))
    torch.testing.assert_close(ops.sigmoid_focal_dice_loss(logits, targets),
                               fused.sigmoid_focal_dice_loss(logits, targets), rtol=0, atol=0)
    torch.testing.assert_close(ops.pairwise_mask_costs(logits, targets),
                               fused.pairwise_mask_costs(logits, targets), rtol=0, atol=0)


def test_fallback_without_extension():
    """No extension: one warning with the build command, the references, and fused raises."""
    script = textwrap.dedent("""
        import warnings
        import torch
        from mmseg_maskformer import ops
        assert not ops.extension_available()
        x, t = torch.randn(2, 3, 4), torch.rand(2, 6, 8) > 0.5
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(2):
                got = ops.sigmoid_focal_dice_loss(x, t)
                ops.pairwise_mask_costs(x, t)
                ops.point_sample(x[:, None], torch.rand(2, 5, 2))
        torch.testing.assert_close(got, ops.reference.sigmoid_focal_dice_loss(x, t))
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1, messages
        assert 'pip install -e . --no-build-isolation' in messages[0], messages
        try:
            ops.fused.point_sample(x[:, None], torch.rand(2, 5, 2))
        except RuntimeError as exc:
            assert 'not available' in str(exc), exc
        else:
            raise AssertionError('fused ops ran without the extension')
    """)
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(filter(None, [repo_root, os.environ.get('PYTHONPATH')]))
    env = dict(os.environ, MMSEG_MASKFORMER_NO_EXTENSION='1', PYTHONPATH=python_path)
    result = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


IMPLEMENTATIONS = ['reference', 'fused']


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request, device):
    if request.param == 'fused':
        return request.getfixturevalue('fused')
    return reference


@pytest.mark.parametrize('logits_shape, targets_shape, targets_dtype, match', [
    ((3, 4, 4, 1), (3, 4, 4), torch.bool, 'mask_logits must have 2 or 3 dimensions'),
    ((3, 4, 4), (3, 8), torch.bool, 'targets must have as many dimensions'),
    ((3, 4, 4), (2, 8, 8), torch.bool, 'same number of masks'),
    ((3, 5), (3, 6), torch.float32, 'point-form targets must have the shape'),
    ((3, 0, 4), (3, 8, 8), torch.bool, 'at least one pixel'),
    ((3, 4, 4), (3, 8, 8), torch.int32, 'targets must be bool, uint8 or floating point'),
])
def test_loss_rejects_bad_inputs(impl, device, logits_shape, targets_shape, targets_dtype, match):
    logits = torch.zeros(logits_shape, device=device)
    targets = torch.zeros(targets_shape, device=device, dtype=targets_dtype)
    with pytest.raises((ValueError, TypeError), match=match):
        impl.sigmoid_focal_dice_loss(logits, targets)


def test_rejects_bad_dtypes_and_values(impl, device):
    targets = torch.zeros(2, 4, 4, device=device, dtype=torch.uint8)
    with pytest.raises(TypeError, match='mask_logits must be float32'):
        impl.sigmoid_focal_dice_loss(targets.long(), targets)
    targets[1, 2, 3] = 2
    for fn in (impl.sigmoid_focal_dice_loss, impl.pairwise_mask_costs):
        with pytest.raises(ValueError, match='uint8 must hold 0 or 1, found 2'):
            fn(torch.zeros(2, 4, 4, device=device), targets)
    with pytest.raises(ValueError, match='gamma must be >= 0'):
        impl.sigmoid_focal_dice_loss(torch.zeros(2, 4, 4, device=device), targets.bool(),
                                     gamma=-1)
    with pytest.raises(ValueError, match='point-form targets must have as many points'):
        impl.pairwise_mask_costs(torch.zeros(2, 5, device=device),
                                 torch.zeros(3, 6, device=device))


def test_point_sample_rejects_bad_inputs(impl, device):
    inputs = torch.zeros(2, 3, 4, 4, device=device)
    with pytest.raises(ValueError, match=r'points must have shape \(N, P, 2\)'):
        impl.point_sample(inputs, torch.zeros(2, 5, 3, device=device))
    with pytest.raises(ValueError, match='same batch size'):
        impl.point_sample(inputs, torch.zeros(3, 5, 2, device=device))
    with pytest.raises(TypeError, match='points must be floating point'):
        impl.point_sample(inputs, torch.zeros(2, 5, 2, device=device, dtype=torch.long))
    with pytest.raises(ValueError, match='inputs must have 4 dimensions'):
        impl.point_sample(inputs[0], torch.zeros(2, 5, 2, device=device))


def test_kernels_check_direct_calls(fused, device):
    """Calls that bypass the Python validation still fail cleanly in C++."""
    op = torch.ops.mmseg_maskformer
    with pytest.raises(RuntimeError, match='same number of masks'):
        op.sigmoid_focal_dice_loss(torch.zeros(3, 4, 4, device=device),
                                   torch.zeros(2, 4, 4, device=device), 0.25, 2.0, 1.0)
    with pytest.raises(RuntimeError, match='as many points'):
        op.pairwise_mask_costs(torch.zeros(3, 5, device=device),
                               torch.zeros(2, 6, device=device), 0.25, 2.0, 1.0)
    with pytest.raises(RuntimeError, match='same batch size'):
        op.point_sample(torch.zeros(2, 1, 4, 4, device=device),
                        torch.zeros(3, 5, 2, device=device), False)
