"""tools/train.py's options as the Runner receives them: --amp for both dtypes, and which
checkpoints --trust-checkpoint names."""
import os

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import init_default_scope

from cli_testing import CONFIG, load_tool
from mmseg_maskformer.engine import NonFiniteGuardAmpOptimWrapper

train = load_tool('train')


@pytest.mark.parametrize('dtype, loss_scale', [('float16', 'dynamic'), ('bfloat16', 1.0)])
def test_amp_builds_the_guarded_mixed_precision_wrapper(monkeypatch, dtype, loss_scale):
    # mmengine's AmpOptimWrapper wants an accelerator; its construction is what is tested here
    # (without CUDA torch's GradScaler disables itself).
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    cfg = train.build_config(train.parse_args([CONFIG, '--amp', '--amp-dtype', dtype]))
    init_default_scope('mmseg')
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper) is NonFiniteGuardAmpOptimWrapper
    assert wrapper.cast_dtype == getattr(torch, dtype)
    assert cfg.optim_wrapper.loss_scale == loss_scale
    # bf16: a fixed scale (the scaler is reset to it after every step); fp16: dynamic
    assert wrapper._scale_update_param == (1.0 if dtype == 'bfloat16' else None)


def test_amp_refuses_an_unknown_optimizer_wrapper():
    args = train.parse_args([CONFIG, '--amp', '--cfg-options', 'optim_wrapper.type=MyWrapper'])
    with pytest.raises(ValueError, match='--amp needs an optimizer wrapper of type .* MyWrapper'):
        train.build_config(args)


def test_checkpoints_named_are_load_from_and_the_checkpoint_resumed(tmp_path):
    cfg = train.build_config(train.parse_args([CONFIG, '--work-dir', str(tmp_path), '--resume']))
    assert train.checkpoints_named(cfg) == []  # nothing to resume yet
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    assert train.checkpoints_named(cfg) == [str(tmp_path / 'iter_8.pth')]
    cfg = train.build_config(train.parse_args(
        [CONFIG, '--work-dir', str(tmp_path), '--resume', '--cfg-options', 'load_from=a.pth']))
    assert train.checkpoints_named(cfg) == ['a.pth']  # mmengine resumes from load_from then
    cfg = train.build_config(train.parse_args([CONFIG, '--work-dir', str(tmp_path)]))
    assert train.checkpoints_named(cfg) == []
    assert 'MMSEG_MASKFORMER_TRUST_CHECKPOINTS' not in os.environ
