"""The "Ignore pixels" guide (docs/en/user_guides/8_ignore_pixels.md): the experiment's commands,
shortened to 2 iterations on tiny data.

The guide's loop trains ``..._shapes-ignore-band-128x128.py`` (``ignore_mode='negative'``) and
``..._shapes-ignore-band-exclude-128x128.py`` (``'exclude'``) with the ``--cfg-options`` of its
code block (read from the guide here, iteration counts 400 -> 2) plus: the data root of a tiny
Shapes copy (4 + 2 images of 128², so that the data preprocessor pads nothing and the only 255s
are the band's), batch 2, a log line every iteration and a warm-up of 1 iteration (the guide's
``param_scheduler.1.end`` needs ``param_scheduler.1.begin`` below it).

Checked:
- the ``IgnoreBand`` transform of both configs' training pipeline: in the batch the model gets
  (dataset pipeline, collation, ``data_preprocessor``), rows 40%-60% of every label map (the rows
  whose centre lies in [0.4 H, 0.6 H), computed here) are 255 and every other pixel is the
  annotation file's label (flipped when RandomFlip flipped the image); validation samples keep
  their full labels;
- with the configs' seed, the first iteration's logged mask losses (focal and dice, every decoder
  layer) differ between ``negative`` and ``exclude``, while ``num_masks`` is the same; the
  ``exclude`` config with ``model.decode_head.ignore_mode=negative`` logs exactly the
  ``negative`` run's numbers (so the configs differ in the ignore mode only, and the difference
  is not run-to-run noise);
- both runs end with the validation's mIoU.

Not run here, and why: the 400-iteration runs (about 3 minutes each) and the guide's table of
their mIoU (25.18 vs 40.51): a short run cannot show which mode trains better; the mask losses
under both modes are tested against the definition in tests/core/test_ignore_mode.py.
"""
import os
import re

import numpy as np
import pytest
from PIL import Image

from cli_testing import REPO, run, tiny_options
from mmseg_maskformer.datasets.shapes import generate_shapes_dataset

CONFIGS = {
    mode: os.path.join(REPO, 'configs', 'maskformer',
                       f'maskformer_r18-tiny_1xb8-2k_shapes-{name}-128x128.py')
    for mode, name in (('negative', 'ignore-band'), ('exclude', 'ignore-band-exclude'))
}
ITERS, SIZE = 2, 128


def readme_options():
    """The ``--cfg-options`` of the guide's ignore experiment, with 400 iterations -> ITERS."""
    with open(os.path.join(REPO, 'docs', 'en', 'user_guides', '8_ignore_pixels.md')) as f:
        section = f.read().split('## Ignore pixels', 1)[1].split('\n## ', 1)[0]
    block = section.split('```bash', 1)[1].split('```', 1)[0]
    assert 'for c in ignore-band ignore-band-exclude' in block, block
    assert 'maskformer_r18-tiny_1xb8-2k_shapes-$c-128x128.py' in block, block
    tokens = block.split('--cfg-options', 1)[1].split('done', 1)[0].replace('\\', ' ').split()
    options = dict(token.split('=', 1) for token in tokens)
    assert options['train_cfg.max_iters'] == '400', options
    return {key: str(ITERS) if value == '400' else value for key, value in options.items()}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes128')
    generate_shapes_dataset(str(root), num_train=4, num_val=2, size=SIZE, seed=0)
    return str(root)


def train(config, data_root, work_dir, *extra):
    options = dict(readme_options())
    options.update(option.split('=', 1) for option in tiny_options(data_root, ITERS))
    options.update(option.split('=', 1) for option in extra)
    return run(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options'] +
               [f'{key}={value}' for key, value in options.items()])


def logged_values(out, iteration):
    line = re.search(rf'Iter\(train\) \[ *{iteration}/{ITERS}\].*', out)
    assert line, out[-3000:]
    values = dict(re.findall(r'(\S+): ([-+0-9.e]+|nan|inf)(?=\s|$)', line.group(0)))
    return {key: float(value) for key, value in values.items()
            if key.startswith(('decode.', 'loss', 'grad_norm'))}


def final_miou(out):
    found = re.findall(r'Iter\(val\) \[\d+/\d+\] +aAcc: ([0-9.]+) +mIoU: ([0-9.]+)', out)
    assert found, out[-3000:]
    return float(found[-1][1])


def band_rows(height):
    """Rows 40%-60% of a map of ``height`` rows: those whose centre lies in [0.4 H, 0.6 H)."""
    centres = np.arange(height) + 0.5
    return (centres >= 0.4 * height) & (centres < 0.6 * height)


@pytest.mark.parametrize('mode', list(CONFIGS))
def test_training_batch_has_the_ignore_band(mode, data_root):
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    import mmseg_maskformer.datasets  # noqa: F401  (registers IgnoreBand, ShapesDataset)

    cfg = Config.fromfile(CONFIGS[mode])
    assert cfg.model.decode_head.ignore_mode == mode
    init_default_scope('mmseg')
    np.random.seed(0)  # RandomFlip's
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=data_root))
    # Two passes over the 4 images: with this seed, some are flipped and some are not.
    samples = [dataset[index % len(dataset)] for index in range(2 * len(dataset))]
    batch = preprocessor(pseudo_collate(samples), training=True)
    assert len({sample.flip for sample in batch['data_samples']}) == 2
    assert batch['inputs'].shape == (len(samples), 3, SIZE, SIZE)
    rows = band_rows(SIZE)
    assert rows.sum() == round(0.2 * SIZE)
    for sample in batch['data_samples']:
        labels = sample.gt_sem_seg.data[0].numpy()
        stored = np.array(Image.open(sample.seg_map_path))
        assert labels.shape == stored.shape == (SIZE, SIZE)
        assert (stored != 255).all()  # the band comes from the transform alone
        assert (labels[rows] == 255).all()
        if sample.flip:
            stored = stored[:, ::-1]
        np.testing.assert_array_equal(labels[~rows], stored[~rows])
    # Validation: the full labels.
    val = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=data_root))
    for index in range(len(val)):
        sample = val[index]['data_samples']
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(),
                                      np.array(Image.open(sample.seg_map_path)))


def test_negative_and_exclude_losses_differ_and_both_print_miou(data_root, tmp_path):
    outs = {mode: train(config, data_root, str(tmp_path / mode))
            for mode, config in CONFIGS.items()}
    control = train(CONFIGS['exclude'], data_root, str(tmp_path / 'control'),
                    'model.decode_head.ignore_mode=negative')
    first = {mode: logged_values(out, 1) for mode, out in outs.items()}
    negative, exclude = first['negative'], first['exclude']
    mask_terms = [key for key in negative if key.endswith(('loss_mask', 'loss_dice'))]
    # The last layer and the 5 intermediate ones of the tiny 6-layer decoder.
    assert len(mask_terms) == 2 * 6, sorted(negative)
    assert sorted(exclude) == sorted(negative)
    for key in mask_terms:
        assert negative[key] != exclude[key], (key, negative[key])
    assert negative['decode.num_masks'] == exclude['decode.num_masks'] > 0
    assert logged_values(control, 1) == negative
    for out in outs.values():
        assert 0 <= final_miou(out) <= 100
