"""tools/plot.py: the numbers it reads from logs, scalars and benchmark tables, and its PNGs."""
import json

import pytest
from PIL import Image

import plot

# The per-class table as mmseg 1.2.2's IoUMetric logs it (prettytable), after other log lines.
TEST_LOG = """2026/11/30 09:00:00 - mmengine - INFO - Iter(test) [4/4]
2026/11/30 09:00:01 - mmengine - INFO - per class results:
2026/11/30 09:00:01 - mmengine - INFO - 
+------------+-------+-------+
|   Class    |  IoU  |  Acc  |
+------------+-------+-------+
| background | 97.25 | 98.9  |
|   water    |  88.5 | 91.0  |
|   circle   |  0.0  |  0.0  |
+------------+-------+-------+
2026/11/30 09:00:01 - mmengine - INFO - Iter(test) [4/4]    aAcc: 95.0000  mIoU: 61.9200
"""


def test_class_iou_is_read_from_the_test_log(tmp_path):
    log = tmp_path / 'run' / 'run.log'
    log.parent.mkdir()
    log.write_text(TEST_LOG)
    assert plot.read_class_iou(str(tmp_path)) == {'background': 97.25, 'water': 88.5,
                                                  'circle': 0.0}
    out = tmp_path / 'iou.png'
    plot.main(['iou', str(log), '--out', str(out)])
    assert Image.open(out).size[0] > 100


def test_curves_use_training_records_only(tmp_path):
    scalars = tmp_path / 'x' / 'vis_data' / 'scalars.json'
    scalars.parent.mkdir(parents=True)
    records = [dict(lr=1e-3 * (i + 1), loss=5.0 - i, loss_cls=1.0, loss_mask=2.0, loss_dice=1.0,
                    iter=10 * (i + 1), step=10 * (i + 1)) for i in range(3)]
    records.append(dict(aAcc=90.0, mIoU=50.0, step=30))  # a validation record
    scalars.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    assert [r['iter'] for r in plot.read_scalars(str(tmp_path))] == [10, 20, 30]
    out = tmp_path / 'curves.png'
    plot.main(['curves', str(tmp_path), '--out', str(out)])
    assert Image.open(out).size == (1100, 400)


def test_benchmark_tables_become_one_chart_per_case(tmp_path):
    table = tmp_path / 'RESULTS.md'
    table.write_text(
        '# title\n\ntext\n\n| case | size | impl | time | peak memory | time / peer |\n'
        '|---|---|---|---|---|---|\n'
        '| criterion | B=2 | peer | 6503.1 ms | 2843 MiB | 1.00× |\n'
        '| criterion | B=2 | fused | 568.9 ms | 139 MiB | 0.09× |\n'
        '| criterion | B=8 | peer | out of memory | | |\n'
        '| criterion | B=8 | fused | 9399.2 ms | 2062 MiB | — |\n'
        '| point_sample | N=40 | peer | 6.7 ms | 6 MiB | 1.00× |\n')
    rows = plot.read_benchmark_rows(str(table))
    assert [(r['case'], r['size'], r['impl']) for r in rows] == [
        ('criterion', 'B=2', 'peer'), ('criterion', 'B=2', 'fused'), ('criterion', 'B=8', 'peer'),
        ('criterion', 'B=8', 'fused'), ('point_sample', 'N=40', 'peer')]
    assert plot.parse_value(rows[1]['time'], 'ms') == 568.9
    assert plot.parse_value(rows[2]['time'], 'ms') is None
    written = plot.plot_benchmark(str(table), str(tmp_path))
    assert sorted(p.rsplit('/', 1)[1] for p in written) == ['RESULTS_criterion.png',
                                                             'RESULTS_point_sample.png']


def test_training_step_table_becomes_one_chart(tmp_path):
    table = tmp_path / 'TRAIN_STEP.md'
    table.write_text(
        '| B | segments | model | time | peak memory | time / peer |\n|---|---|---|---|---|---|\n'
        '| 2 | 20 | peer | 18.928 s | 5.28 GiB | 1.00× |\n'
        '| 2 | 20 | floor | 9.274 s | 2.47 GiB | 0.49× |\n'
        '| 4 | 60 | peer | out of memory | | |\n\nPer phase (medians):\n\n'
        '| B | segments | model | forward | matching |\n|---|---|---|---|---|\n'
        '| 2 | 20 | peer | 2.986 s | 0.439 s |\n')
    rows = plot.read_benchmark_rows(str(table))
    assert [(r['case'], r['size'], r['impl']) for r in rows] == [
        ('training step', 'B=2, M=20', 'peer'), ('training step', 'B=2, M=20', 'floor'),
        ('training step', 'B=4, M=60', 'peer')]
    assert plot.parse_value(rows[0]['time'], 'ms') == pytest.approx(18928.0)
    assert plot.parse_value(rows[1]['peak memory'], 'MiB') == pytest.approx(2.47 * 1024)
    assert plot.parse_value(rows[2]['time'], 'ms') is None
    written = plot.plot_benchmark(str(table), str(tmp_path))
    assert [p.rsplit('/', 1)[1] for p in written] == ['TRAIN_STEP_training_step.png']


def test_training_step_sections_become_one_chart_per_model(tmp_path):
    # tools/benchmark_train_step.py writes one marked section per --model into one file.
    table = tmp_path / 'TRAIN_STEP.md'
    rows = ('| B | segments | model | time | peak memory |\n|---|---|---|---|---|\n'
            '| 2 | 20 | peer | {} s | 1.00 GiB |\n| 2 | 20 | fused | 1.000 s | 0.50 GiB |\n')
    table.write_text('<!-- maskformer -->\n# MaskFormer\n\n' + rows.format('3.000') +
                     '<!-- /maskformer -->\n\n<!-- mask2former -->\n# Mask2Former\n\n' +
                     rows.format('4.000') + '<!-- /mask2former -->\n')
    read = plot.read_benchmark_rows(str(table))
    assert [(r['case'], r['impl'], r['time']) for r in read] == [
        ('training step (maskformer)', 'peer', '3.000 s'),
        ('training step (maskformer)', 'fused', '1.000 s'),
        ('training step (mask2former)', 'peer', '4.000 s'),
        ('training step (mask2former)', 'fused', '1.000 s')]
    written = plot.plot_benchmark(str(table), str(tmp_path))
    assert [p.rsplit('/', 1)[1] for p in written] == [
        'TRAIN_STEP_training_step_maskformer.png', 'TRAIN_STEP_training_step_mask2former.png']
