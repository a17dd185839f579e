"""tools/benchmark_train_step.py in its quick mode, on small crops."""
import os
import re
import subprocess
import sys

import pytest

from mmseg_maskformer import ops

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, 'tools', 'benchmark_train_step.py')


@pytest.mark.skipif(not ops.extension_available(), reason='compiled ops not built')
def test_quick_table(tmp_path):
    out = tmp_path / 'train_step.md'
    result = subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--quick', '--size', '128', '--repeats', '1',
         '--impls', 'peer', 'fused', 'floor', '--out', str(out)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = out.read_text()
    row_pattern = (r'^\| 1 \| 20 \| (\S+) \| ([\d.]+) s \| ([\d.]+) GiB \| (\S+) \| (\S+) \| '
                   r'(\S+) \| (\S+) \|$')
    rows = {m.group(1): m for m in re.finditer(row_pattern, report, re.M)}
    assert set(rows) == {'peer', 'fused', 'floor'}, report
    for impl, row in rows.items():
        time_s, peak = float(row.group(2)), float(row.group(3))
        assert time_s > 0 and peak > 0.1, row.group(0)  # the process holds at least R50 + AdamW
        floor_time, floor_peak = float(rows['floor'].group(2)), float(rows['floor'].group(3))
        # Ratios of the unrounded values; the printed ones are rounded to 3 digits.
        assert float(row.group(6)[:-1]) == pytest.approx(time_s / floor_time, abs=0.02), row[0]
        assert float(row.group(7)[:-1]) == pytest.approx(peak / floor_peak, abs=0.02), row[0]
    assert rows['peer'].group(4) == '1.00×' and rows['floor'].group(6) == '1.00×'
    phases = {m.group(1): [float(v) for v in m.group(2).split(' s | ')] for m in re.finditer(
        r'^\| 1 \| 20 \| (\S+) \| ([-\d. s|]+) s \|$', report, re.M)}
    assert set(phases) == {'peer', 'fused', 'floor'}, report
    assert phases['floor'][1] == 0  # no matching in the floor
    assert phases['fused'][1] > 0 and phases['peer'][1] > 0  # matcher / assigner were timed
    assert all(v >= 0 for impl in ('fused', 'floor') for v in phases[impl]), phases
