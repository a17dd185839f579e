"""tools/gpu_check.py in its CPU mode: the steps a GPU machine runs, at small sizes."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, 'tools', 'gpu_check.py')


@pytest.fixture(scope='module')
def gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_max_error_tolerance(gpu_check):
    expected = torch.tensor([1.0, -2.0, 1e-3, 0.0], dtype=torch.float64)
    # Allowed per element: 1e-5 * max|expected| (2e-5) + 1e-4 * |expected|.
    # The worst element is the one with the least slack (the last), not the largest error.
    within = expected + torch.tensor([1.0e-4, -2.1e-4, 1.0e-5, -1.9e-5], dtype=torch.float64)
    err, tol, ok = gpu_check.max_error(within, expected)
    assert ok and err == pytest.approx(1.9e-5) and tol == pytest.approx(2e-5)
    outside = expected + torch.tensor([0.0, 0.0, 0.0, 2.1e-5], dtype=torch.float64)
    err, tol, ok = gpu_check.max_error(outside, expected)
    assert not ok and err == pytest.approx(2.1e-5) and tol == pytest.approx(2e-5)
    assert not gpu_check.max_error(torch.tensor([float('nan')]), torch.tensor([1.0]))[2]
    with pytest.raises(AssertionError, match='shape'):
        gpu_check.max_error(torch.zeros(2), torch.zeros(3))


@pytest.mark.needs_extension
def test_cpu_mode_end_to_end(tmp_path, gpu_check):
    out = tmp_path / 'gpu_check.md'
    result = subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--quick', '--skip-build', '--skip-benchmark',
         '--tests', os.path.join(REPO_ROOT, 'tests', 'ops', 'test_point_sample.py'),
         '--out', str(out)],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert 'GPU CHECK (cpu): PASSED' in result.stdout
    report = out.read_text()
    assert 'GPU CHECK (cpu): PASSED' in report
    assert re.search(r'\| pytest tests/ops/test_point_sample\.py \| pass \| \d+ passed', report)
    # Every op case of the script was compared, output by output, within its tolerance.
    for name in gpu_check.CASES:
        label = gpu_check.case_label(name, quick=True)
        rows = [line for line in report.splitlines() if f'compare {label}:' in line]
        assert rows, name
        for row in rows:
            err, tol = map(float, re.search(r'worst err (\S+) \(tol (\S+)\)', row).groups())
            assert '| pass |' in row and err <= tol, row
