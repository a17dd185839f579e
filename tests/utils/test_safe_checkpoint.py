"""Safe checkpoint loading: payloads are refused and never run, mmengine's own objects load."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_maskformer.models  # noqa: F401  (installs the safe loader, as every config does)
from mmseg_maskformer.engine import SafeCheckpointHook
from mmseg_maskformer.utils.checkpoint import TRUST_ENV, UntrustedCheckpointError


class Payload:
    """Unpickling this runs ``code`` (what a malicious checkpoint would do)."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def write_payload_checkpoint(path, marker):
    model = torch.nn.Linear(2, 2)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(note=Payload(f'open({str(marker)!r}, "w").write("ran")'))), path)


@pytest.fixture
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


def test_payload_is_refused_and_never_runs(tmp_path, untrusted):
    path, marker = tmp_path / 'evil.pth', tmp_path / 'ran.txt'
    write_payload_checkpoint(path, marker)
    for load in (lambda: _load_checkpoint(str(path), map_location='cpu'),
                 lambda: load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')):
        with pytest.raises(UntrustedCheckpointError) as error:
            load()
        message = str(error.value)
        assert str(path) in message and 'the global exec' in message and TRUST_ENV in message
        assert '--trust-checkpoint' in message
    assert not marker.exists()


def test_opt_in_loads_a_trusted_file(tmp_path, monkeypatch):
    path, marker = tmp_path / 'trusted.pth', tmp_path / 'ran.txt'
    write_payload_checkpoint(path, marker)
    monkeypatch.setenv(TRUST_ENV, '1')
    checkpoint = _load_checkpoint(str(path), map_location='cpu')
    assert set(checkpoint) == {'state_dict', 'meta'}
    assert marker.read_text() == 'ran'  # full unpickling: exactly why it is opt-in


def _message_hub_state(name):
    hub = MessageHub.get_instance(name)
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25), count=2)
    hub.update_info('iter', np.int64(7))
    hub.update_info('files', ['a.png', 'b.png'])
    return hub.state_dict()


def test_mmengine_message_hub_loads_safely_through_the_hook(tmp_path, untrusted):
    # What mmengine's Runner puts besides tensors: the message hub's HistoryBuffers (stored as
    # arrays by SafeCheckpointHook) and numpy scalars in its runtime info.
    checkpoint = dict(message_hub=_message_hub_state('hub_through_hook'), state_dict={'w': torch.ones(2)},
                      counts=np.arange(3, dtype=np.int32), flag=np.bool_(True),
                      value=np.float32(1.5))
    hook = SafeCheckpointHook()
    hook.before_save_checkpoint(None, checkpoint)
    torch.save(checkpoint, tmp_path / 'own.pth')
    loaded = _load_checkpoint(str(tmp_path / 'own.pth'), map_location='cpu')
    hook.after_load_checkpoint(None, loaded)
    restored = MessageHub.get_instance('test_safe_checkpoint_restored')
    restored.load_state_dict(loaded['message_hub'])
    log, count = restored.get_scalar('train/loss').data
    assert log.tolist() == [0.5, 0.25] and count.tolist() == [1, 2]
    assert restored.get_scalar('train/loss').mean() == 0.25  # (0.5 + 0.25) / (1 + 2)
    assert restored.get_info('iter') == 7 and restored.get_info('files') == ['a.png', 'b.png']
    assert loaded['counts'].tolist() == [0, 1, 2] and loaded['value'] == np.float32(1.5)


def test_a_raw_history_buffer_is_refused_and_loads_with_the_opt_in(tmp_path, monkeypatch):
    # mmengine pickles HistoryBuffer with getattr(HistoryBuffer, 'min') etc.: neither is
    # allow-listed, since getattr on allowed objects could reach anything.
    torch.save(dict(message_hub=_message_hub_state('hub_raw')), tmp_path / 'plain.pth')
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedCheckpointError, match='the global mmengine.logging.history_buffer.HistoryBuffer'):
        _load_checkpoint(str(tmp_path / 'plain.pth'), map_location='cpu')
    monkeypatch.setenv(TRUST_ENV, '1')
    loaded = _load_checkpoint(str(tmp_path / 'plain.pth'), map_location='cpu')
    assert loaded['message_hub']['log_scalars']['train/loss'].data[0].tolist() == [0.5, 0.25]


def test_importing_never_makes_loading_unsafe(tmp_path, untrusted):
    # torch's own default stays safe after our import, for any path.
    path, marker = tmp_path / 'evil.pth', tmp_path / 'ran.txt'
    write_payload_checkpoint(path, marker)
    with pytest.raises(Exception):
        torch.load(path)
    assert not marker.exists()
    assert TRUST_ENV not in os.environ
