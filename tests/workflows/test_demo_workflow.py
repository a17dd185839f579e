"""``make demo`` (README, top): ``bash tools/demo.sh CONFIG WORK_DIR`` on tiny Shapes data.

README promises: the Shapes data is made, the tiny MaskFormer trains, the mIoU on the Shapes
validation split is printed, and WORK_DIR gets panels (image | ground truth | prediction, with a
class legend) in ``panels/``, the training curves ``curves.png`` and the per-class IoU ``iou.png``.
The test runs ``tools/demo.sh`` itself, shortened through its two pass-through variables
(``DEMO_DATA_OPTIONS``: 4 + 3 Shapes images of 64² in a temporary folder instead of 600 + 100 of
128² in ``data/shapes``; ``DEMO_CFG_OPTIONS``: that data root, 2 iterations of batch 2, no
dataloader workers), with ``OMP_NUM_THREADS=1``. Checked: the data lands where asked (the
repository's ``data/shapes`` untouched), 2 iterations ran and their checkpoint was tested,
test.py's summary line gives the mIoU and its log's per-class table (the source of ``iou.png``)
names the 6 Shapes classes and averages to it; ``curves.png`` and ``iou.png`` are non-blank PNGs;
``panels/`` has one PNG per validation image whose first two columns are exactly the image and the
palette-coloured ground truth, the third only palette colours.

Not run here: ``make demo`` itself, because its first step (``make setup``, ``tools/setup_env.sh``)
installs packages and may build mmcv from source (minutes, network); and the 2000-iteration
training (about 10 minutes on 2 cores), whose 69.94 mIoU the README reports and no test can
afford to reproduce; ``make demo-baseline`` / ``make demo-panoptic`` (the same script with the FCN
and the panoptic config: the panoptic config's train -> test runs in
tests/integration/test_train_test_cli.py, the FCN config only builds and runs a forward in
tests/configs/test_configs.py).
"""
import os
import re
import subprocess

import numpy as np
from PIL import Image

from cli_testing import CONFIG, REPO, load_tool, tiny_options, tool_env
from mmseg_maskformer.datasets import ShapesDataset

NUM_TRAIN, NUM_VAL, SIZE, SCALE = 4, 3, 64, 2


def test_demo_script_prints_miou_and_writes_pictures(tmp_path):
    data_root, work_dir = tmp_path / 'shapes', tmp_path / 'demo'
    repo_data = os.path.join(REPO, 'data', 'shapes')
    repo_data_before = sorted(os.listdir(repo_data)) if os.path.isdir(repo_data) else None
    env = tool_env(
        DEMO_DATA_OPTIONS=f'--out {data_root} --num-train {NUM_TRAIN} --num-val {NUM_VAL} '
        f'--size {SIZE}',
        DEMO_CFG_OPTIONS=' '.join(tiny_options(str(data_root), 2)))
    result = subprocess.run(['bash', 'tools/demo.sh', CONFIG, str(work_dir)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]

    # The data went where DEMO_DATA_OPTIONS said, not into the repository's data/shapes.
    assert len(os.listdir(data_root / 'img_dir' / 'train')) == NUM_TRAIN
    assert len(os.listdir(data_root / 'img_dir' / 'val')) == NUM_VAL
    repo_data_after = sorted(os.listdir(repo_data)) if os.path.isdir(repo_data) else None
    assert repo_data_after == repo_data_before
    # The 2 iterations of DEMO_CFG_OPTIONS ran, and the last checkpoint was tested.
    assert (work_dir / 'iter_2.pth').is_file()
    assert not (work_dir / 'iter_2000.pth').exists()
    assert re.search(r'demo done: training \d+ s, total \d+ s; checkpoint \S*iter_2\.pth', out), \
        out[-2000:]

    # tools/test.py's summary line: the mIoU on the validation split, and the per-class table of
    # its log, the source of iou.png, under the Shapes class names, averaging to that mIoU.
    summary = re.findall(r'^aAcc: ([0-9.]+) mIoU: ([0-9.]+) mAcc: ([0-9.]+)$', result.stdout, re.M)
    assert len(summary) == 1, result.stdout[-3000:]
    miou = float(summary[0][1])
    assert 0 <= miou <= 100
    ious = load_tool('plot').read_class_iou(str(work_dir / 'test'))
    assert tuple(ious) == tuple(ShapesDataset.METAINFO['classes'])
    assert abs(np.nanmean(list(ious.values())) - miou) <= 0.01 + 1e-9

    for chart in ('curves.png', 'iou.png'):
        with Image.open(work_dir / chart) as image:
            assert image.format == 'PNG' and image.width > 100 and image.height > 100, chart
            pixels = np.asarray(image.convert('RGB')).reshape(-1, 3)
        # Not a blank canvas: lines or bars, text, axes.
        assert len(np.unique(pixels, axis=0)) > 10, chart

    # panels/: one per validation image (--num 6 > 3), image | ground truth | prediction side by
    # side (4 white pixels apart, zoomed SCALE times), a legend on the right.
    names = sorted(os.listdir(data_root / 'img_dir' / 'val'))
    assert sorted(os.listdir(work_dir / 'panels')) == names
    palette = np.array(ShapesDataset.METAINFO['palette'], dtype=np.uint8)
    for name in names:
        with Image.open(work_dir / 'panels' / name) as image:
            assert image.format == 'PNG'
            picture = np.asarray(image.convert('RGB'))
        zoom = SIZE * SCALE
        assert picture.shape[0] >= zoom and picture.shape[1] > 3 * zoom + 8 * SCALE
        source = np.asarray(Image.open(data_root / 'img_dir' / 'val' / name).convert('RGB'))
        labels = np.asarray(Image.open(data_root / 'ann_dir' / 'val' / name))
        expected_gt = palette[labels]  # Shapes labels have no ignore value
        # Column k at the pictures' own size.
        columns = [picture[:zoom, k * (zoom + 4 * SCALE):][:, :zoom][::SCALE, ::SCALE]
                   for k in range(3)]
        np.testing.assert_array_equal(columns[0], source)
        np.testing.assert_array_equal(columns[1], expected_gt)
        prediction = columns[2].reshape(-1, 3)
        assert all((palette == colour).all(1).any() for colour in np.unique(prediction, axis=0))
