"""tools/visualize.py and the colouring of label maps: predictions show every class, ground truth
leaves out the head's ignore index, class lists must match the model."""
import glob
import os.path as osp

import numpy as np
import pytest
from cli_testing import SEMANTIC_CONFIG
from PIL import Image

import visualize
from mmseg_maskformer.visualization import colourise
from checkpoint_testing import checkpoint_naming_fewer_classes

WHITE = (255, 255, 255)


def test_colourise_paints_every_class_of_a_palette_over_256_colours():
    palette = np.random.RandomState(0).randint(0, 250, (300, 3)).astype(np.uint8)
    labels = np.array([[0, 254, 255], [256, 299, 65535]])
    expected = np.empty((2, 3, 3), dtype=np.uint8)
    for (row, col), label in np.ndenumerate(labels):
        expected[row, col] = palette[label] if label < len(palette) else WHITE
    # A prediction: no ignore value, class 255 has its colour (65535 has none: white).
    np.testing.assert_array_equal(colourise(labels, palette), expected)
    # ADE20K-Full ground truth: 65535 is the ignore index, 255 a class.
    np.testing.assert_array_equal(colourise(labels, palette, ignore_index=65535), expected)
    # Ground truth of a dataset ignoring 255.
    expected[0, 2] = WHITE
    np.testing.assert_array_equal(colourise(labels, palette, ignore_index=255), expected)


def panels(out_dir):
    return {osp.splitext(osp.basename(path))[0]: np.asarray(Image.open(path))
            for path in sorted(glob.glob(osp.join(str(out_dir), '*.png')))}


def run_visualize(shapes_root, checkpoint, out_dir, *options, extra=()):
    visualize.main([SEMANTIC_CONFIG, checkpoint, '--out-dir', str(out_dir), '--num', '2',
                    '--scale', '1', '--device', 'cpu', *extra, '--cfg-options',
                    f'test_dataloader.dataset.data_root={shapes_root}', *options])
    return panels(out_dir)


def test_ground_truth_pixels_of_the_heads_ignore_index_are_white(shapes_root, semantic_checkpoint,
                                                                 tmp_path):
    """Class 0 (background, in every image) as the head's ignore index: white in the ground-truth
    panel, in its colour otherwise. Panels: image | 4 px | ground truth | 4 px | prediction."""
    from mmseg_maskformer.datasets import PALETTE

    plain = run_visualize(shapes_root, semantic_checkpoint, tmp_path / 'plain')
    ignoring = run_visualize(shapes_root, semantic_checkpoint, tmp_path / 'ignore0',
                             'model.decode_head.ignore_index=0')
    assert len(plain) == 2 and plain.keys() == ignoring.keys()
    for name in plain:
        labels = np.asarray(Image.open(osp.join(shapes_root, 'ann_dir', 'val', f'{name}.png')))
        height, width = labels.shape
        gt_plain = plain[name][:height, width + 4:2 * width + 4]
        gt_ignoring = ignoring[name][:height, width + 4:2 * width + 4]
        background = labels == 0
        assert background.any() and (~background).any()
        np.testing.assert_array_equal(gt_plain, np.asarray(PALETTE, dtype=np.uint8)[labels])
        assert (gt_ignoring[background] == WHITE).all()
        np.testing.assert_array_equal(gt_ignoring[~background], gt_plain[~background])
        # Predictions are drawn alike whatever the ground truth ignores.
        np.testing.assert_array_equal(ignoring[name][:height, 2 * width + 8:3 * width + 8],
                                      plain[name][:height, 2 * width + 8:3 * width + 8])


def test_class_lists_that_do_not_match_the_model_are_refused(shapes_root, semantic_checkpoint,
                                                            tmp_path):
    with pytest.raises(ValueError, match=r'has 6 classes but its model predicts 7'):
        run_visualize(shapes_root, semantic_checkpoint, tmp_path / 'seven',
                      'model.decode_head.num_classes=7')
    path = checkpoint_naming_fewer_classes(semantic_checkpoint, str(tmp_path / 'five_names.pth'), 5)
    with pytest.raises(ValueError, match=r'five_names\.pth names 5 classes .* predicts 6'):
        run_visualize(shapes_root, path, tmp_path / 'five')
    assert not glob.glob(str(tmp_path / '*' / '*.png'))


def test_trust_checkpoint_flag(shapes_root, semantic_checkpoint, tmp_path, monkeypatch):
    trusted = []
    monkeypatch.setattr(visualize, 'trust_checkpoint', trusted.append)
    assert len(run_visualize(shapes_root, semantic_checkpoint, tmp_path,
                             extra=['--trust-checkpoint'])) == 2
    assert trusted == [semantic_checkpoint]
