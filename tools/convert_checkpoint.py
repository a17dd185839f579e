"""Convert a Hugging Face MaskFormer (ResNet backbone) into an mmseg config + checkpoint.

    python tools/convert_checkpoint.py HF_DIR OUT_DIR [--name NAME]

``HF_DIR`` is a local ``save_pretrained`` directory of a ``MaskFormerForInstanceSegmentation``
(nothing is downloaded). Writes ``OUT_DIR/NAME.py`` (a full mmseg config) and ``OUT_DIR/NAME.pth``
(``{'state_dict', 'meta'}``) for ``tools/test.py`` or ``mmseg.apis.init_model``.
"""
import argparse
import json
import os
import os.path as osp
import sys

# Runs from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from mmengine.config import Config  # noqa: E402

from mmseg_maskformer.converters import convert_hf_maskformer  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert a Hugging Face MaskFormer checkpoint to MMSegmentation')
    parser.add_argument('hf_dir', help='local directory written by save_pretrained')
    parser.add_argument('out_dir', help='directory for NAME.py and NAME.pth')
    parser.add_argument('--name', help='output basename (default: the name of HF_DIR)')
    return parser.parse_args()


def image_normalisation(hf_dir):
    """The saved image processor's mean/std ([0, 1] scale), or ``(None, None)`` for the defaults."""
    path = osp.join(hf_dir, 'preprocessor_config.json')
    if not osp.isfile(path):
        return None, None
    with open(path) as f:
        processor = json.load(f)
    return processor.get('image_mean'), processor.get('image_std')


def dataset_meta(hf_config):
    classes = tuple(hf_config.id2label[i] for i in range(hf_config.num_labels))
    # The fixed-seed random palette mmseg's BaseSegDataset gives datasets without one.
    palette = np.random.RandomState(42).randint(0, 255, size=(len(classes), 3)).tolist()
    return dict(classes=classes, palette=palette)


def main():
    args = parse_args()
    name = args.name or osp.basename(osp.normpath(args.hf_dir))
    hf_model = transformers.MaskFormerForInstanceSegmentation.from_pretrained(
        args.hf_dir, local_files_only=True).eval()
    image_mean, image_std = image_normalisation(args.hf_dir)
    model_cfg, state_dict = convert_hf_maskformer(hf_model, image_mean, image_std)

    os.makedirs(args.out_dir, exist_ok=True)
    checkpoint_path = osp.join(args.out_dir, f'{name}.pth')
    config_path = osp.join(args.out_dir, f'{name}.py')
    meta = dict(dataset_meta=dataset_meta(hf_model.config), converted_from=osp.abspath(args.hf_dir),
                transformers_version=transformers.__version__)
    torch.save(dict(state_dict=state_dict, meta=meta), checkpoint_path)
    Config(dict(
        custom_imports=dict(imports=['mmseg_maskformer.models'], allow_failed_imports=False),
        default_scope='mmseg',
        model=model_cfg,
        # Enough for mmseg.apis.inference_model; the HF processor's resizing is not reproduced.
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
    )).dump(config_path)
    print(f'config: {config_path}')
    print(f'checkpoint: {checkpoint_path}')


if __name__ == '__main__':
    main()
