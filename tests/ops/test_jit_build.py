"""Compiling the ops on first use (``mmseg_maskformer.ops._jit``): cache, concurrent first use, a
stale prebuilt library, a failing compiler. A one-op C++ source stands in for ``csrc/`` so that
each build takes seconds; the real sources go through the same function (``make check-install``
compiles them from an sdist in a fresh environment)."""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY_SOURCE = '''
#include <ATen/ATen.h>
#include <torch/library.h>
at::Tensor twice(const at::Tensor& x) { return x * 2; }
TORCH_LIBRARY(mmseg_maskformer_jit_test, m) { m.def("twice(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL(mmseg_maskformer_jit_test, CPU, m) { m.impl("twice", twice); }
'''
BROKEN_SOURCE = '#include <ATen/ATen.h>\nat::Tensor broken() { return undefined_name; }\n'

COMPILING = 'compiling the C++ ops on first use'


def write_sources(root, text):
    os.makedirs(os.path.join(root, 'ops'), exist_ok=True)
    with open(os.path.join(root, 'ops', 'op.cpp'), 'w') as f:
        f.write(text)
    return str(root)


def python(script, cache, *args, python_path=REPO, wait=True):
    env = dict(os.environ, MMSEG_MASKFORMER_OPS_CACHE=str(cache), PYTHONPATH=python_path)
    env.pop('MMSEG_MASKFORMER_NO_EXTENSION', None)
    # Run from python_path: `python -c` puts the working directory first on sys.path.
    process = subprocess.Popen([sys.executable, '-c', textwrap.dedent(script), *map(str, args)],
                               cwd=python_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    return process.communicate(timeout=600) + (process.returncode, ) if wait else process


BUILD_TINY = '''
    import sys
    import torch
    from mmseg_maskformer.ops import _jit
    error = _jit.build_and_load('test', sys.argv[1])
    assert error is None, error
    print(torch.ops.mmseg_maskformer_jit_test.twice(torch.ones(2)).tolist())
'''


@pytest.fixture(scope='module')
def tiny_cache(tmp_path_factory):
    """A cache and tiny sources, compiled by two processes starting at once."""
    base = tmp_path_factory.mktemp('jit')
    root = write_sources(base / 'tiny', TINY_SOURCE)
    cache = base / 'cache'
    processes = [python(BUILD_TINY, cache, root, wait=False) for _ in range(2)]
    results = [process.communicate(timeout=600) + (process.returncode, )
               for process in processes]
    return root, cache, results


def test_concurrent_first_use_compiles_once(tiny_cache):
    root, cache, results = tiny_cache
    for out, err, code in results:
        assert code == 0, err[-3000:]
        assert out.strip() == '[2.0, 2.0]'
    compiled = [err for _, err, _ in results if COMPILING in err]
    assert len(compiled) == 1, [err for _, err, _ in results]  # the other waited on the lock
    assert re.search(r'\(test\) into .* \.\.\. done in \d+ s', compiled[0]), compiled[0]
    directories = [p for p in os.listdir(cache) if not p.endswith('.lock')]
    assert len(directories) == 1 and directories[0].startswith('torch')


def test_a_later_process_loads_the_cache(tiny_cache):
    root, cache, _ = tiny_cache
    out, err, code = python(BUILD_TINY, cache, root)
    assert code == 0 and out.strip() == '[2.0, 2.0]', err[-3000:]
    assert COMPILING not in err


def package_copy(base, csrc_text):
    """A copy of the package with the given sources in ``.mim/csrc`` and no prebuilt library."""
    target = os.path.join(base, 'mmseg_maskformer')
    shutil.copytree(os.path.join(REPO, 'mmseg_maskformer'), target,
                    ignore=shutil.ignore_patterns('*.so', '__pycache__', '.mim'))
    write_sources(os.path.join(target, '.mim', 'csrc'), csrc_text)
    return target


def test_a_stale_prebuilt_library_falls_back_to_the_first_use_build(tiny_cache, tmp_path):
    _, cache, _ = tiny_cache
    package = package_copy(tmp_path, TINY_SOURCE)
    with open(os.path.join(package, '_C.cpython-311-x86_64-linux-gnu.so'), 'w') as f:
        f.write('not a library: built against another torch')
    out, err, code = python('''
        import torch
        from mmseg_maskformer.ops import _extension
        assert _extension._load() is None
        print(torch.ops.mmseg_maskformer_jit_test.twice(torch.ones(1)).tolist())
    ''', cache, python_path=str(tmp_path))
    # The library comes from the cache the tiny sources were compiled into (same hash).
    assert code == 0 and out.strip() == '[2.0]', err[-3000:]


def test_a_failing_compiler_warns_once_with_its_last_lines(tmp_path):
    package_copy(tmp_path, BROKEN_SOURCE)
    out, err, code = python('''
        import warnings
        import torch
        from mmseg_maskformer import ops
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            for _ in range(2):
                got = ops.point_sample(torch.ones(1, 1, 3, 3), torch.full((1, 4, 2), 0.5))
        torch.testing.assert_close(got, torch.ones(1, 1, 4))
        assert len(caught) == 1, [str(w.message) for w in caught]
        print(caught[0].message)
    ''', tmp_path / 'cache', python_path=str(tmp_path))
    assert code == 0, err[-3000:]
    assert 'compiling it failed' in out and re.search('undefined_name. was not declared', out), out
    assert 'mmseg_maskformer._C was not built' in out
    assert f'{COMPILING} (mmseg_maskformer._C was not built)' in err and '... failed' in err
