"""Safe checkpoint loading through mmengine: payloads are refused and never run, for local files
and every URL scheme; OpenMMLab's own checkpoints (mmengine's HistoryBuffer) load without opt-in;
the opt-ins trust what they name and nothing more; importing the package changes nothing else."""
import functools
import http.server
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_maskformer.models  # noqa: F401  (installs the safe loaders, as every config does)
from checkpoint_testing import Payload
from mmseg_maskformer.engine import SafeCheckpointHook
from mmseg_maskformer.utils import checkpoint as safe_checkpoint
from mmseg_maskformer.utils.checkpoint import (TRUST_ENV, UntrustedCheckpointError,
                                               trust_checkpoint)


class HistoryBufferMethod:
    """Pickles as ``getattr(HistoryBuffer, name)``, the way mmengine's buffers name their
    statistics methods, with any name."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


def write_payload_checkpoint(path, marker):
    torch.save(dict(state_dict=torch.nn.Linear(2, 2).state_dict(),
                    meta=dict(note=Payload(f'open({str(marker)!r}, "w").write("ran")'))), path)
    return path


@pytest.fixture(autouse=True)
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.setattr(safe_checkpoint, '_trusted_files', set())


def test_local_payload_is_refused_naming_the_global_and_never_runs(tmp_path):
    path = write_payload_checkpoint(tmp_path / 'evil.pth', tmp_path / 'ran.txt')
    for load in (lambda: _load_checkpoint(str(path), map_location='cpu'),
                 lambda: load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')):
        with pytest.raises(UntrustedCheckpointError) as error:
            load()
        message = str(error.value)
        assert str(path) in message and 'the global exec' in message
        assert '--trust-checkpoint' in message and TRUST_ENV in message
    assert not (tmp_path / 'ran.txt').exists()


@pytest.mark.parametrize('value', ['1', 'true', 'TRUE', 'Yes', ' yes '])
def test_environment_opt_in_values_that_trust(tmp_path, monkeypatch, value):
    path = write_payload_checkpoint(tmp_path / 'trusted.pth', tmp_path / 'ran.txt')
    monkeypatch.setenv(TRUST_ENV, value)
    assert set(_load_checkpoint(str(path), map_location='cpu')) == {'state_dict', 'meta'}
    assert (tmp_path / 'ran.txt').read_text() == 'ran'  # full unpickling: why it is opt-in


@pytest.mark.parametrize('value', ['0', 'false', 'False', 'no', 'off', '', '2'])
def test_environment_values_that_do_not_trust(tmp_path, monkeypatch, value):
    path = write_payload_checkpoint(tmp_path / 'evil.pth', tmp_path / 'ran.txt')
    monkeypatch.setenv(TRUST_ENV, value)
    with pytest.raises(UntrustedCheckpointError):
        _load_checkpoint(str(path), map_location='cpu')
    assert not (tmp_path / 'ran.txt').exists()


def test_trusting_one_file_trusts_that_file_only(tmp_path):
    trusted = write_payload_checkpoint(tmp_path / 'trusted.pth', tmp_path / 'trusted.txt')
    other = write_payload_checkpoint(tmp_path / 'other.pth', tmp_path / 'other.txt')
    trust_checkpoint(os.path.relpath(trusted))  # any spelling of the path
    _load_checkpoint(str(trusted), map_location='cpu')
    assert (tmp_path / 'trusted.txt').read_text() == 'ran'
    with pytest.raises(UntrustedCheckpointError):
        _load_checkpoint(str(other), map_location='cpu')
    assert not (tmp_path / 'other.txt').exists()
    assert TRUST_ENV not in os.environ  # child processes inherit no trust


def _message_hub_state(name, iteration=np.int64(7)):
    hub = MessageHub.get_instance(name)
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25), count=2)
    hub.update_info('iter', iteration)
    hub.update_info('files', ['a.png', 'b.png'])
    return hub.state_dict()


def _check_restored_hub(state, name):
    restored = MessageHub.get_instance(name)
    restored.load_state_dict(state)
    log, count = restored.get_scalar('train/loss').data
    assert log.tolist() == [0.5, 0.25] and count.tolist() == [1, 2]
    assert restored.get_scalar('train/loss').mean() == 0.25  # (0.5 + 0.25) / (1 + 2)
    assert restored.get_info('iter') == 7 and restored.get_info('files') == ['a.png', 'b.png']


def test_released_openmmlab_checkpoint_layout_loads_without_opt_in(tmp_path):
    # The layout of mmseg's / mmdet's / mmpretrain's released .pth files: weights, meta with the
    # config text and dataset meta, and the raw message hub mmengine's Runner saves.
    state_dict = torch.nn.Conv2d(3, 4, 3).state_dict()
    meta = dict(mmseg_version='1.2.2', config="model = dict(type='EncoderDecoder')",
                dataset_meta=dict(classes=('road', 'sky'), palette=[[1, 2, 3], [4, 5, 6]]),
                seed=np.int64(1), epoch=0, iter=160000)
    torch.save(dict(state_dict=state_dict, meta=meta, message_hub=_message_hub_state('released')),
               tmp_path / 'released.pth')
    model = torch.nn.Conv2d(3, 4, 3)
    loaded = load_checkpoint(model, str(tmp_path / 'released.pth'), map_location='cpu')
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state_dict.items())
    assert loaded['meta']['dataset_meta']['classes'] == ('road', 'sky')
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert type(buffer) is HistoryBuffer and buffer.mean() == 0.25
    _check_restored_hub(loaded['message_hub'], 'released_restored')


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        loss = (self.linear(inputs) ** 2).mean()
        return dict(loss=loss) if mode == 'loss' else loss


def _plain_runner(work_dir, **kwargs):
    dataset = [dict(inputs=torch.full((2, ), float(i))) for i in range(4)]
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), default_scope='mmengine',
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        experiment_name=f'plain_{work_dir.name}', **kwargs)


def test_checkpoint_of_a_plain_mmengine_runner_loads_and_resumes_without_opt_in(tmp_path):
    runner = _plain_runner(tmp_path / 'run')
    runner.train()
    path = tmp_path / 'run' / 'iter_2.pth'
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert type(loaded['message_hub']['log_scalars']['train/loss']) is HistoryBuffer
    resumed = _plain_runner(tmp_path / 'resumed', load_from=str(path), resume=True)
    resumed.load_or_resume()
    assert resumed.iter == 2
    assert resumed.message_hub.get_scalar('train/loss').data[0].tolist() == \
        runner.message_hub.get_scalar('train/loss').data[0].tolist()


@pytest.mark.parametrize('name', ['__init__', 'register_statistics', 'update', '__class__'])
def test_getattr_is_refused_beyond_the_history_buffer_statistics(tmp_path, name):
    torch.save(dict(method=HistoryBufferMethod(name)), tmp_path / 'method.pth')
    with pytest.raises(UntrustedCheckpointError, match=f"getattr.*HistoryBuffer.*'{name}'"):
        _load_checkpoint(str(tmp_path / 'method.pth'), map_location='cpu')
    torch.save(dict(method=HistoryBufferMethod('mean')), tmp_path / 'mean.pth')
    assert _load_checkpoint(str(tmp_path / 'mean.pth'))['method'] is HistoryBuffer.mean


@pytest.mark.parametrize('forge, refused', [
    ('method', 'statistics methods'),
    ('attribute', "state \\['_count_history', '_log_history', 'extra'"),
    ('length', 'length is not an int'),
])
def test_history_buffer_state_must_be_what_mmengine_writes(tmp_path, monkeypatch, forge, refused):
    buffer = HistoryBuffer([0.5], [1], max_length=10)
    torch.save(dict(buffer=buffer), tmp_path / 'plain.pth')
    with monkeypatch.context() as patch:
        if forge == 'method':  # pickled from the class-wide registry of statistics methods
            patch.setitem(HistoryBuffer._statistics_methods, 'mean', HistoryBuffer.max)
        elif forge == 'attribute':
            buffer.extra = 1
        else:
            buffer.max_length = torch.ones(1)
        torch.save(dict(buffer=buffer), tmp_path / 'forged.pth')
    with pytest.raises(UntrustedCheckpointError, match=refused):
        _load_checkpoint(str(tmp_path / 'forged.pth'), map_location='cpu')
    loaded = _load_checkpoint(str(tmp_path / 'plain.pth'), map_location='cpu')['buffer']
    assert type(loaded) is HistoryBuffer and loaded.mean() == 0.5 and loaded.max_length == 10
    assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.mean


def test_hook_writes_history_without_numpy_and_still_reads_the_array_format(tmp_path):
    checkpoint = dict(message_hub=_message_hub_state('hub_hook', iteration=7),
                      state_dict={'w': torch.ones(2)})
    hook = SafeCheckpointHook()
    hook.before_save_checkpoint(None, checkpoint)
    torch.save(checkpoint, tmp_path / 'own.pth')
    # plain torch.load(weights_only=True) reads it: no global beyond torch's own allow-list
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / 'own.pth')) == []
    loaded = _load_checkpoint(str(tmp_path / 'own.pth'), map_location='cpu')
    assert loaded['message_hub_history']['train/loss']['log'] == [0.5, 0.25]
    hook.after_load_checkpoint(None, loaded)
    _check_restored_hub(loaded['message_hub'], 'hub_hook_restored')
    # the format of earlier releases: numpy arrays
    old = dict(message_hub=dict(log_scalars={}, runtime_info={}, resumed_keys={}),
               message_hub_history={'train/loss': dict(log=np.array([0.5, 0.25]),
                                                       count=np.array([1, 2]),
                                                       max_length=1000000)})
    torch.save(old, tmp_path / 'old.pth')
    loaded = _load_checkpoint(str(tmp_path / 'old.pth'), map_location='cpu')
    hook.after_load_checkpoint(None, loaded)
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 0.25


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """A directory served on 127.0.0.1, and torch.hub's download cache in tmp_path."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.parametrize('scheme', ['http', 'torchvision', 'open-mmlab', 'mmcls'])
def test_url_schemes_load_tensors_and_refuse_payloads(http_root, monkeypatch, tmp_path, scheme):
    root, base = http_root
    weights = torch.nn.Linear(2, 2).state_dict()
    torch.save(dict(state_dict=weights), root / 'plain.pth')
    write_payload_checkpoint(root / 'evil.pth', tmp_path / 'ran.txt')
    urls = {'plain': f'{base}/plain.pth', 'evil': f'{base}/evil.pth'}
    monkeypatch.setattr(mmengine_checkpoint, 'get_torchvision_models', lambda: urls)
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models', lambda: urls)
    monkeypatch.setattr(mmengine_checkpoint, 'get_mmcls_models', lambda: urls)
    name = {'http': urls, 'torchvision': {k: f'torchvision://{k}' for k in urls},
            'open-mmlab': {k: f'open-mmlab://{k}' for k in urls},
            'mmcls': {k: f'mmcls://{k}' for k in urls}}[scheme]

    model = torch.nn.Linear(2, 2)
    if scheme == 'mmcls':  # mmpretrain's layout: the backbone under 'backbone.'
        torch.save(dict(state_dict={f'backbone.{k}': v for k, v in weights.items()}),
                   root / 'plain.pth')
    load_checkpoint(model, name['plain'], map_location='cpu')
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())

    with pytest.raises(UntrustedCheckpointError, match='the global exec'):
        load_checkpoint(torch.nn.Linear(2, 2), name['evil'], map_location='cpu')
    assert not (tmp_path / 'ran.txt').exists()
    trust_checkpoint(name['evil'])  # the name the user gave, not the URL it resolves to
    load_checkpoint(torch.nn.Linear(2, 2), name['evil'], map_location='cpu', strict=False)
    assert (tmp_path / 'ran.txt').read_text() == 'ran'


def test_pretrained_init_cfg_with_a_url_loads_safely(http_root, tmp_path):
    from mmengine.model import BaseModule
    root, base = http_root
    write_payload_checkpoint(root / 'evil.pth', tmp_path / 'ran.txt')

    class Backbone(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=f'{base}/evil.pth'))
            self.layer = torch.nn.Linear(2, 2)

    with pytest.raises(UntrustedCheckpointError):
        Backbone().init_weights()
    assert not (tmp_path / 'ran.txt').exists()


IMPORT_CHECK = '''
import numpy as np, torch
torch.serialization.add_safe_globals([np.ndarray])   # a user's own allow-list
module = lambda g: g[1] if isinstance(g, tuple) else g.__module__
before = set(torch.serialization.get_safe_globals())
import mmseg_maskformer.models
from mmengine.runner.checkpoint import _load_checkpoint
after_import = set(torch.serialization.get_safe_globals())
torch.save(dict(a=np.arange(3)), {path!r})
_load_checkpoint({path!r})   # a load through mmengine admits its globals for that load only
after_load = set(torch.serialization.get_safe_globals())
# importing torch.distributed (mmengine does) makes torch allow-list its own DTensor classes
added = [module(g) for g in after_import - before]
assert all(name.startswith('torch.') for name in added), added
assert after_load == after_import and np.ndarray in after_load, after_load ^ after_import
'''


def test_importing_and_loading_leave_torch_allow_list_as_it_was(tmp_path):
    code = IMPORT_CHECK.format(path=str(tmp_path / 'arrays.pth'))
    subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, TRUST_ENV: ''})


def test_torch_load_outside_mmengine_stays_safe_after_import(tmp_path):
    path = write_payload_checkpoint(tmp_path / 'evil.pth', tmp_path / 'ran.txt')
    with pytest.raises(pickle.UnpicklingError, match='GLOBAL exec'):
        torch.load(path)
    torch.save(dict(buffer=HistoryBuffer([1.0], [1])), tmp_path / 'buffer.pth')
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(tmp_path / 'buffer.pth')  # only mmengine's loaders admit it
    assert not (tmp_path / 'ran.txt').exists()
