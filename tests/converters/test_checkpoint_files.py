"""Checkpoint files are read without running code from them (.pkl and .pth alike)."""
import collections
import pickle

import numpy as np
import pytest
import torch
from hf_testing import tiny_hf_model
from official_testing import official_state_from_hf, write_official_pkl, write_official_pth

from mmseg_maskformer.converters import convert_official_maskformer, load_checkpoint_file


class Payload:
    """Unpickling this writes ``marker`` (through ``exec``, which pickle resolves by name)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("ran")', )


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
def test_pkl_of_numpy_arrays_loads(tmp_path, protocol):
    state = collections.OrderedDict(a=np.arange(6, dtype=np.float32).reshape(2, 3),
                                    b=np.array([3], dtype=np.int64))
    path = tmp_path / 'model.pkl'
    path.write_bytes(pickle.dumps({'model': state, '__author__': 'x', 'scale': np.float64(0.5)},
                                  protocol=protocol))
    loaded = load_checkpoint_file(str(path))
    assert loaded['__author__'] == 'x' and loaded['scale'] == 0.5
    np.testing.assert_array_equal(loaded['model']['a'], state['a'])
    assert loaded['model']['b'].dtype == np.int64


def test_pkl_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'marker'
    payload = pickle.dumps({'model': {'w': np.zeros(2)}, 'x': Payload(marker)})
    # The payload is live: an unrestricted unpickler runs it.
    pickle.loads(payload)
    assert marker.read_text() == 'ran'
    marker.unlink()

    path = tmp_path / 'evil.pkl'
    path.write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match=r'evil\.pkl.*builtins\.exec'):
        load_checkpoint_file(str(path))
    with pytest.raises(pickle.UnpicklingError, match=r'builtins\.exec'):
        convert_official_maskformer(str(path))
    assert not marker.exists()


def test_pth_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'marker'
    path = tmp_path / 'evil.pth'
    torch.save({'model': {'w': torch.zeros(2)}, 'x': Payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r'evil\.pth.*Unsupported global: GLOBAL exec'):
        convert_official_maskformer(str(path))
    assert not marker.exists()


def test_users_own_checkpoints_load(tmp_path):
    state = official_state_from_hf(tiny_hf_model(seed=6))
    from_pkl = convert_official_maskformer(write_official_pkl(tmp_path / 'a.pkl', state))
    write_official_pth(tmp_path / 'a.pth', state)
    from_pth = convert_official_maskformer(tmp_path / 'a.pth')  # a Path works too
    assert from_pkl.keys() == from_pth.keys()
    assert all(torch.equal(from_pkl[k], from_pth[k]) for k in from_pkl)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pkl'):
        load_checkpoint_file(str(tmp_path / 'nothing.pkl'))
    path = tmp_path / 'model.bin'
    path.write_bytes(b'')
    with pytest.raises(ValueError, match=r"extension '\.bin'"):
        load_checkpoint_file(str(path))
