"""Convert a released MaskFormer or Mask2Former (official or Hugging Face) into an mmseg checkpoint.

    python tools/convert_checkpoint.py MODEL.pkl OUT_DIR --config CONFIG [--name NAME]
    python tools/convert_checkpoint.py HF_DIR OUT_DIR [--name NAME]

The source is detected from the input:

- a ``.pkl`` / ``.pth`` file of the official facebookresearch/MaskFormer or
  facebookresearch/Mask2Former release (or trained with the official code), told apart by its key
  names (``sem_seg_head.predictor.transformer.decoder.layers.*`` for MaskFormer,
  ``sem_seg_head.predictor.transformer_cross_attention_layers.*`` for Mask2Former): ``--config``
  names the mmseg config of the same model (e.g.
  ``configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py`` or
  ``configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py``); the converted weights
  are checked against the model it builds (every missing, unexpected or differently shaped tensor
  is named) and written to ``OUT_DIR/NAME.pth``, with the class names and colours of the config's
  test dataset (its data need not be on disk). The file is read without running code from it.
- a local ``save_pretrained`` directory of a transformers ``MaskFormerForInstanceSegmentation``
  or ``Mask2FormerForUniversalSegmentation`` (ResNet or Swin backbone), told apart by
  ``model_type`` in its ``config.json`` (nothing is downloaded): writes ``OUT_DIR/NAME.py`` (a full
  mmseg config) and ``OUT_DIR/NAME.pth``.

The ``.pth`` holds ``{'state_dict', 'meta'}`` for ``tools/test.py``, ``tools/infer.py`` or
``mmseg.apis.init_model``; ``meta.dataset_meta`` names the classes (``classes``, ``palette``, and
``thing_classes`` for panoptic datasets), which ``init_model`` would otherwise guess from the
number of classes.
"""
import argparse
import json
import os
import os.path as osp
import sys

# Runs from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

OFFICIAL_EXTENSIONS = ('.pkl', '.pth')
# Official model -> the head of its mmseg config.
OFFICIAL_HEADS = {'MaskFormer': 'MaskFormerHead', 'Mask2Former': 'Mask2FormerHead'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official or Hugging Face MaskFormer / Mask2Former checkpoint to '
        'MMSegmentation')
    parser.add_argument('source', help='official .pkl / .pth file, or a local directory written '
                        'by transformers save_pretrained')
    parser.add_argument('out_dir', help='directory for NAME.pth (and NAME.py for HF sources)')
    parser.add_argument('--config', help='mmseg config of the model (official sources only)')
    parser.add_argument('--name', help='output basename (default: the name of SOURCE)')
    return parser.parse_args(argv)


def image_normalisation(hf_dir):
    """The saved image processor's mean/std ([0, 1] scale), or ``(None, None)`` for the defaults."""
    path = osp.join(hf_dir, 'preprocessor_config.json')
    if not osp.isfile(path):
        return None, None
    with open(path) as f:
        processor = json.load(f)
    return processor.get('image_mean'), processor.get('image_std')


def hf_dataset_meta(hf_config):
    from mmseg_maskformer.converters import random_palette
    classes = tuple(hf_config.id2label[i] for i in range(hf_config.num_labels))
    # An HF config names no colours: those mmseg's datasets get without a palette.
    return dict(classes=classes, palette=random_palette(len(classes)))


def hf_model_type(hf_dir):
    """``model_type`` of the directory's ``config.json`` ('maskformer' or 'mask2former')."""
    with open(osp.join(hf_dir, 'config.json')) as f:
        return json.load(f).get('model_type')


def convert_hf(hf_dir, out_dir, name):
    import transformers

    from mmseg_maskformer.converters import convert_hf_mask2former, convert_hf_maskformer
    model_type = hf_model_type(hf_dir)
    if model_type == 'mask2former':
        model_class, convert = (transformers.Mask2FormerForUniversalSegmentation,
                                convert_hf_mask2former)
    elif model_type == 'maskformer':
        model_class, convert = transformers.MaskFormerForInstanceSegmentation, convert_hf_maskformer
    else:
        sys.exit(f'{hf_dir}/config.json: model_type {model_type!r} is neither maskformer nor '
                 'mask2former')
    hf_model = model_class.from_pretrained(hf_dir, local_files_only=True).eval()
    image_mean, image_std = image_normalisation(hf_dir)
    model_cfg, state_dict = convert(hf_model, image_mean, image_std)
    meta = dict(dataset_meta=hf_dataset_meta(hf_model.config), converted_from=osp.abspath(hf_dir),
                transformers_version=transformers.__version__)
    checkpoint_path = save_checkpoint(state_dict, meta, out_dir, name)
    config_path = osp.join(out_dir, f'{name}.py')
    Config(dict(
        custom_imports=dict(imports=['mmseg_maskformer.models'], allow_failed_imports=False),
        default_scope='mmseg',
        model=model_cfg,
        # Enough for mmseg.apis.inference_model; the HF processor's resizing is not reproduced.
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
    )).dump(config_path)
    print(f'config: {config_path}')
    print(f'checkpoint: {checkpoint_path}')


def convert_official(path, config_path, out_dir, name):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_maskformer.converters import (check_state_dict_fits, config_dataset_meta,
                                             convert_official_mask2former,
                                             convert_official_maskformer, load_checkpoint_file,
                                             official_model_type)
    if config_path is None:
        sys.exit(f'{path} is an official MaskFormer / Mask2Former checkpoint: pass --config with '
                 'the mmseg config of the same model (see configs/maskformer/ and '
                 'configs/mask2former/)')
    cfg = Config.fromfile(config_path)
    try:
        dataset_meta = config_dataset_meta(cfg)
    except ValueError as error:
        sys.exit(f'{config_path}: {error}')
    checkpoint = load_checkpoint_file(path)
    try:
        model_type = official_model_type(checkpoint)
    except ValueError as error:
        sys.exit(f'{path}: {error}')
    head = str(cfg.model.get('decode_head', {}).get('type', '')).split('.')[-1]
    if head in set(OFFICIAL_HEADS.values()) - {OFFICIAL_HEADS[model_type]}:
        sys.exit(f'{path} is an official {model_type} checkpoint, but {config_path} builds a '
                 f'{head}: pass a config with {OFFICIAL_HEADS[model_type]} (see '
                 f'configs/{model_type.lower()}/)')
    convert = (convert_official_mask2former if model_type == 'Mask2Former' else
               convert_official_maskformer)
    state_dict = convert(checkpoint)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    check_state_dict_fits(state_dict, MODELS.build(cfg.model))
    meta = dict(dataset_meta=dataset_meta, converted_from=osp.abspath(path),
                config=osp.abspath(config_path))
    print(f'checkpoint: {save_checkpoint(state_dict, meta, out_dir, name)}')


def save_checkpoint(state_dict, meta, out_dir, name):
    os.makedirs(out_dir, exist_ok=True)
    checkpoint_path = osp.join(out_dir, f'{name}.pth')
    torch.save(dict(state_dict=state_dict, meta=meta), checkpoint_path)
    return checkpoint_path


def main(argv=None):
    args = parse_args(argv)
    source = osp.normpath(args.source)
    if osp.isdir(source):
        if args.config is not None:
            sys.exit('--config is for official checkpoints; an HF directory brings its own')
        convert_hf(source, args.out_dir, args.name or osp.basename(source))
    elif osp.splitext(source)[1] in OFFICIAL_EXTENSIONS:
        name = args.name or osp.splitext(osp.basename(source))[0]
        convert_official(source, args.config, args.out_dir, name)
    else:
        sys.exit(f'{args.source}: expected an official .pkl / .pth file or a transformers '
                 'save_pretrained directory')


if __name__ == '__main__':
    main()
