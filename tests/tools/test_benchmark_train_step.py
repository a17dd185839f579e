"""tools/benchmark_train_step.py in its quick mode, on small crops, for both models."""
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, 'tools', 'benchmark_train_step.py')


def _bench():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    import benchmark_train_step as bench
    return bench


def _run(*args):
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'))


def _check_report(report, impls):
    """The three tables of a ``--quick`` run (B = 1, 20 segments) of ``impls`` in ``report``."""
    row_pattern = (r'^\| 1 \| 20 \| (\S+) \| ([\d.]+) s \| ([\d.]+) GiB \| (\S+) \| (\S+) \| '
                   r'(\S+) \| (\S+) \|$')
    rows = {m.group(1): m for m in re.finditer(row_pattern, report, re.M)}
    assert set(rows) == set(impls), report
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
    assert set(phases) == set(impls), report
    assert phases['floor'][1] == 0  # no matching in the floor
    assert phases['fused'][1] > 0 and phases['peer'][1] > 0  # matcher / assigner were timed
    assert all(v >= 0 for impl in impls if impl != 'peer' for v in phases[impl]), phases
    process = {m.group(1): m for m in re.finditer(
        r'^\| 1 \| 20 \| (\S+) \| ([\d.]+) GiB \| (\S+) \| (\S+) \|$', report, re.M)}
    assert set(process) == set(impls), report
    for impl, row in process.items():
        # The resident set holds the interpreter and libraries besides the tensors.
        assert float(row.group(2)) > 0.1, row.group(0)
        assert float(row.group(4)[:-1]) == pytest.approx(
            float(row.group(2)) / float(process['floor'].group(2)), abs=0.02), row.group(0)
    assert process['peer'].group(3) == '1.00×' and process['floor'].group(4) == '1.00×'


def _main_in_process(monkeypatch, *args):
    """The tool's ``main`` with ``args``, each row measured in this process: at these sizes a row
    process costs more in imports than the row itself. (The row processes' launcher,
    ``run_worker``, runs in tests/tools/test_gpu_check.py through benchmark_ops.py; the command
    line's parsing in test_mask2former_has_no_fused_pts_row.)"""
    bench = _bench()
    monkeypatch.setattr(bench, 'run_worker', lambda script, spec, timeout: bench.measure(spec))
    monkeypatch.setattr(bench.resource, 'setrlimit', lambda *limits: None)  # a row process's cap
    monkeypatch.setattr(sys, 'argv', [SCRIPT, *args])
    bench.main()


@pytest.mark.needs_extension
def test_quick_table(tmp_path, monkeypatch):
    out = tmp_path / 'train_step.md'
    _main_in_process(monkeypatch, '--device', 'cpu', '--quick', '--size', '128', '--repeats', '1',
                     '--impls', 'peer', 'fused', 'floor', '--out', str(out))
    report = out.read_text()
    assert report.startswith('<!-- maskformer -->\n# Benchmark: one MaskFormer R50 training step')
    _check_report(report, ('peer', 'fused', 'floor'))


@pytest.mark.needs_extension
def test_quick_table_mask2former(tmp_path, monkeypatch):
    """The Mask2Former rows, into the Mask2Former section of a file that has a MaskFormer one.
    (``reference`` differs from ``fused`` only in the config's ``loss_impl``: left out, as in
    test_quick_table, to keep the test short.)"""
    out = tmp_path / 'train_step.md'
    out.write_text('# MaskFormer results\n\n| B | segments | model |\n')  # written before --model
    _main_in_process(monkeypatch, '--model', 'mask2former', '--device', 'cpu', '--quick',
                     '--size', '64', '--repeats', '1', '--impls', 'peer', 'fused', 'floor',
                     '--out', str(out))
    report = out.read_text()
    maskformer, mask2former = report.split('<!-- /maskformer -->\n\n')
    assert maskformer == '<!-- maskformer -->\n# MaskFormer results\n\n| B | segments | model |\n'
    assert mask2former.startswith('<!-- mask2former -->\n# Benchmark: one Mask2Former R50 training '
                                  'step (cpu, 64² crops)\n\nCommand: `python tools/benchmark_'
                                  'train_step.py --model mask2former ')
    assert mask2former.endswith('<!-- /mask2former -->\n')
    assert 'Mask2Former (``configs/mask2former/' in mask2former and 'fused-pts' not in mask2former
    _check_report(mask2former, ('peer', 'fused', 'floor'))


def test_mask2former_has_no_fused_pts_row():
    result = _run('--model', 'mask2former', '--impls', 'fused', 'fused-pts')
    assert result.returncode == 2 and 'has no row fused-pts' in result.stderr, result.stderr


def test_write_section_replaces_only_its_model(tmp_path):
    bench = _bench()
    out = tmp_path / 'TRAIN_STEP.md'
    bench.write_section(str(out), 'mask2former', '# M2F 1\n')
    assert out.read_text() == '<!-- mask2former -->\n# M2F 1\n<!-- /mask2former -->\n'
    bench.write_section(str(out), 'maskformer', '# MF 1')  # goes before the later model
    bench.write_section(str(out), 'mask2former', '# M2F 2')
    two = ('<!-- maskformer -->\n# MF 1\n<!-- /maskformer -->\n\n'
           '<!-- mask2former -->\n# M2F 2\n<!-- /mask2former -->\n')
    assert out.read_text() == two
    bench.write_section(str(out), 'maskformer', '# MF 2\n\ntable')
    assert out.read_text() == two.replace('# MF 1', '# MF 2\n\ntable')
    # A file from before --model is one MaskFormer section: replaced by a MaskFormer run ...
    out.write_text('# old MaskFormer results\n')
    bench.write_section(str(out), 'maskformer', '# MF 3')
    assert out.read_text() == '<!-- maskformer -->\n# MF 3\n<!-- /maskformer -->\n'
    # ... and kept by a Mask2Former run.
    out.write_text('# old MaskFormer results\n')
    bench.write_section(str(out), 'mask2former', '# M2F 3')
    assert out.read_text() == ('<!-- maskformer -->\n# old MaskFormer results\n'
                               '<!-- /maskformer -->\n\n'
                               '<!-- mask2former -->\n# M2F 3\n<!-- /mask2former -->\n')


def test_legend_of_each_model():
    bench = _bench()
    maskformer, mask2former = bench.legend_markdown('maskformer'), bench.legend_markdown(
        'mask2former')
    assert 'fused-pts' in maskformer and 'fused-pts' not in mask2former
    assert "mmseg 1.2.2's own MaskFormer" in maskformer
    assert "mmseg 1.2.2's own Mask2Former" in mask2former and 'all 10' in mask2former
    for legend in (maskformer, mask2former):
        assert legend.startswith('Rows:\n\n```text\npeer ')
        assert 'Mask2Former rows' not in legend and '--out FILE' not in legend
        assert legend.endswith('followed by their range.')


def test_rounds_give_medians_and_per_round_ratios():
    bench = _bench()

    def run(time_s, peak):
        return dict(time_s=time_s, peak_bytes=peak, process_bytes=2 * peak,
                    phases={p: time_s / 5 for p in bench.PHASES})

    fused = bench.combine_rounds([run(12, 4), run(10, 4), run(30, 5)])
    floor = bench.combine_rounds([run(10, 4), run(10, 2), run(20, 5)])
    assert (fused['time_s'], fused['peak_bytes'], fused['phases']['backward']) == (12, 4, 2.4)
    # Rounds 1.2, 1.0 and 1.5: their median, not the ratio of the medians (12 / 10).
    assert bench.ratio(fused, floor, 'time_s') == '1.20× (1.00–1.50)'
    assert bench.ratio(fused, floor, 'peak_bytes') == '1.00× (1.00–2.00)'
    assert fused['process_bytes'] == 8
    # A failed round drops out of the medians and of its round's ratio.
    failed = bench.combine_rounds([run(12, 4), {'error': 'out of memory'}, run(30, 5)])
    assert failed['time_s'] == 21
    assert bench.ratio(failed, floor, 'time_s') == '1.35× (1.20–1.50)'
    # One round: the plain ratio; no successful round: the error, and no ratio.
    assert bench.ratio(bench.combine_rounds([run(11, 3)]),
                       bench.combine_rounds([run(10, 3)]), 'time_s') == '1.10×'
    assert bench.combine_rounds([{'error': 'timed out'}]) == {'error': 'timed out'}
    assert bench.ratio({'error': 'timed out'}, floor, 'time_s') == '—'


def test_peak_tensor_bytes_counts_what_a_step_holds_at_once():
    bench = _bench()

    def step():
        first = torch.empty(1_000_000)  # 4 MB
        second = torch.empty(2_000_000)  # 8 MB while the first is held: the peak
        del first, second
        third = torch.empty(2_500_000)  # 10 MB alone
        del third

    assert bench.peak_tensor_bytes(step, live_bytes=1000) == 1000 + 12_000_000


def test_live_tensor_bytes_counts_each_storage_once():
    bench = _bench()
    model = torch.nn.Linear(3, 2)  # 6 + 2 floats
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # exp_avg and exp_avg_sq like the weights, plus a float32 step per weight
    images = torch.zeros(2, 5)  # 10 floats
    samples = [SimpleNamespace(gt_sem_seg=SimpleNamespace(data=images[0]))]  # a view of images
    weights = 8 * 4
    expected = weights * 4 + 2 * 4 + 10 * 4  # weights, grads, two moments; steps; images
    assert bench.live_tensor_bytes(model, SimpleNamespace(optimizer=optimizer), images,
                                   samples) == expected


@pytest.mark.needs_extension
def test_worker_prints_its_row_as_json(monkeypatch, capsys):
    """What a row process runs (``--worker SPEC``): one JSON line with the row's measures."""
    bench = _bench()
    monkeypatch.setattr(bench.resource, 'setrlimit', lambda *limits: None)
    spec = dict(impl='floor', device='cpu', model='maskformer', batch=1, segments=3, size=64,
                repeats=1)
    monkeypatch.setattr(sys, 'argv', [SCRIPT, '--worker', json.dumps(spec)])
    bench.main()
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row['time_s'] > 0 and row['peak_bytes'] > 0 and row['process_bytes'] > 0
    assert set(row['phases']) == set(bench.PHASES) and row['phases']['matching'] == 0
