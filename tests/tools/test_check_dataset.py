"""tools/check_dataset.py on a generated folder with planted faults."""
import contextlib
import io
import json

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from cli_testing import CONFIG as SEMANTIC
from cli_testing import PANOPTIC_CONFIG as PANOPTIC
from cli_testing import load_tool
from mmseg_maskformer.datasets import generate_shapes_dataset

CHECK_DATASET = load_tool('check_dataset')



def check(config, root=None):
    """Runs the tool (in this process) on ``config``, with the data under ``root`` unless the
    config names it; returns its exit status and what it printed."""
    options = [] if root is None else ['--cfg-options'] + [
        f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = CHECK_DATASET.main([config] + options)
    assert printed.getvalue()
    return status, printed.getvalue()


@pytest.fixture
def root(tmp_path):
    generate_shapes_dataset(str(tmp_path), num_train=4, num_val=2, size=32, seed=0)
    return tmp_path


def expected_counts(root, split):
    """Per-class pixel and image counts computed straight from the annotation PNGs."""
    maps = [np.array(Image.open(p)) for p in sorted((root / 'ann_dir' / split).glob('*.png'))]
    pixels = [sum(int((m == c).sum()) for m in maps) for c in range(6)]
    images = [sum(int((m == c).any()) for m in maps) for c in range(6)]
    return pixels, images


def summed(*counts):
    return [list(map(sum, zip(*column))) for column in zip(*counts)]


def table_rows(out, split):
    block = out.split(f'[{split}]', 1)[1]
    rows = {}
    for line in block.splitlines()[2:9]:
        name, pixels, _, *images = line.split()
        rows[name] = (int(pixels), int(images[0]) if images else None)
    return rows


def test_clean_data_passes_with_exact_counts(root):
    code, out = check(SEMANTIC, root)
    assert code == 0 and out.rstrip().endswith('OK'), out[-3000:]
    for split in ('train', 'val'):
        pixels, images = expected_counts(root, split)
        rows = table_rows(out, split)
        names = ['background', 'water', 'circle', 'rectangle', 'triangle', 'star']
        assert [rows[n] for n in names] == list(zip(pixels, images))
        assert rows['(ignored)'] == (0, None)


def test_planted_faults_are_all_reported_with_their_files(root):
    bad_label = root / 'ann_dir/train/00000.png'
    labels = np.array(Image.open(bad_label))
    labels[0, :2] = [9, 7]
    Image.fromarray(labels).save(bad_label)
    with_ignore = root / 'ann_dir/train/00003.png'
    labels = np.array(Image.open(with_ignore))
    labels[0, 0] = 255
    Image.fromarray(labels).save(with_ignore)
    small = root / 'ann_dir/train/00001.png'
    Image.open(small).resize((16, 16), Image.NEAREST).save(small)
    corrupt = root / 'img_dir/train/00002.png'
    corrupt.write_bytes(b'garbage')
    missing = root / 'ann_dir/val/00001.png'
    missing.unlink()
    code, out = check(SEMANTIC, root)
    assert code == 1 and out.rstrip().endswith('FAILED'), out[-3000:]
    errors = [line for line in out.splitlines() if 'ERROR' in line]
    assert len(errors) == 4, errors
    assert any(str(bad_label) in e and 'label 7, 9 out of range' in e for e in errors)
    assert any(str(small) in e and '(16, 16)' in e for e in errors)
    assert any(str(corrupt) in e and 'not a readable image' in e for e in errors)
    assert any(str(missing) in e for e in errors)
    # The one ignored pixel planted in a valid file is counted (files with errors are not).
    assert table_rows(out, 'train')['(ignored)'][0] == 1


def test_panoptic_json_and_png_disagreements_are_reported(root):
    path = root / 'panoptic_train.json'
    coco = json.loads(path.read_text())
    dropped = coco['annotations'][0]['segments_info'].pop()
    coco['annotations'][1]['segments_info'].append(
        dict(coco['annotations'][1]['segments_info'][0], id=77001))
    path.write_text(json.dumps(coco))
    code, out = check(PANOPTIC, root)
    assert code == 1, out[-3000:]
    assert f"panoptic/train/00000.png: segment ids [{dropped['id']}] are in the PNG" in out
    assert 'panoptic/train/00001.png: segments [77001] of the panoptic JSON have no pixel' in out


def wrapped_config(tmp_path, root):
    """The Shapes config with mmengine's dataset wrappers: train = RepeatDataset of the train
    split, val = test = ConcatDataset of the val split and (again) the train split."""
    cfg = Config.fromfile(SEMANTIC)
    train = dict(cfg.train_dataloader.dataset, data_root=str(root))
    val = dict(cfg.val_dataloader.dataset, data_root=str(root))
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=3, dataset=train)
    cfg.val_dataloader.dataset = dict(type='ConcatDataset', datasets=[val, train])
    cfg.test_dataloader = cfg.val_dataloader
    path = str(tmp_path / 'wrapped.py')
    cfg.dump(path)
    return path


def test_dataset_wrappers_are_checked_through_with_each_file_counted_once(root, tmp_path):
    code, out = check(wrapped_config(tmp_path, root))
    assert code == 0 and out.rstrip().endswith('OK'), out[-3000:]
    assert out.count('[train]') == 1 and out.count('[val]') == 1 and '[test]' not in out, out
    assert '[train] 4 samples' in out and '[val] 6 samples' in out
    names = ['background', 'water', 'circle', 'rectangle', 'triangle', 'star']
    train_counts = expected_counts(root, 'train')
    expected = dict(train=train_counts,
                    val=summed(expected_counts(root, 'val'), train_counts))
    for split, (pixels, images) in expected.items():
        rows = table_rows(out, split)
        assert [rows[n] for n in names] == list(zip(pixels, images)), split


def test_faults_inside_dataset_wrappers_are_reported(root, tmp_path):
    small = root / 'ann_dir/val/00001.png'
    Image.open(small).resize((16, 16), Image.NEAREST).save(small)
    code, out = check(wrapped_config(tmp_path, root))
    assert code == 1 and out.rstrip().endswith('FAILED'), out[-3000:]
    errors = [line for line in out.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and errors[0].startswith('[val]') and str(small) in errors[0], errors
