"""Export a MaskFormer (the whole network, backbone to semantic scores) to ONNX.

Usage: python tools/export_onnx.py CONFIG [CHECKPOINT] --out model.onnx [--shape H W]
       [--dynamic-shape] [--raw] [--opset 18] [--cfg-options k=v ...]

Input ``inputs``: the float32 (B, 3, H, W) batch exactly as the config's data preprocessor
produces it, i.e. RGB when the config has ``bgr_to_rgb=True`` (mmseg reads images as BGR), minus
the config's ``mean``, divided by its ``std``; the model's metadata properties ``mean``, ``std``,
``channel_order``, ``classes`` record them. The batch size is always dynamic; H and W are fixed to
``--shape`` (default: the data preprocessor's ``size``) unless ``--dynamic-shape``.

Output ``scores``: the (B, K, H, W) semantic scores ``EncoderDecoder.encode_decode`` returns
for one whole image (arg-max over K gives the label map; resizing to the original image size and
sliding windows are left to the caller). With ``--raw`` also ``cls_logits`` (B, Q, K+1) and
``mask_logits`` (B, Q, H, W), the last decoder layer's class logits and mask logits upsampled to
the input size, for panoptic post-processing in Python:
``mmseg_maskformer.panoptic_inference(cls_logits[0], mask_logits[0], thing_classes=...)`` accepts
the numpy arrays onnxruntime returns.

Without CHECKPOINT the weights are random (``init_cfg`` is not applied, nothing is
downloaded): useful to check that an architecture exports. Needs ``onnx`` and, for ``--check``,
``onnxruntime``.
"""
import argparse
import json
import os
import tempfile
import warnings
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, DictAction

from mmseg_maskformer.core import semantic_inference
from mmseg_maskformer.utils.checkpoint import TRUST_CHECKPOINT_HELP, trust_checkpoint


class OnnxMaskFormer(nn.Module):
    """A segmentor with a ``MaskFormerHead`` as one tensor-in, tensors-out module.

    Equal to ``segmentor.encode_decode(inputs, metas)`` with every image's ``img_shape`` and
    ``pad_shape`` the input size; written on the head's ``forward`` so that H and W can stay
    symbolic (``encode_decode`` sizes its output from Python ints in the metas).
    """

    def __init__(self, segmentor: nn.Module, raw: bool = False):
        super().__init__()
        self.segmentor = segmentor
        self.raw = raw

    def forward(self, inputs: torch.Tensor):
        cls_logits, mask_logits = self.segmentor.decode_head.last_layer_logits(
            self.segmentor.extract_feat(inputs))
        mask_logits = F.interpolate(mask_logits, size=inputs.shape[-2:], mode='bilinear',
                                    align_corners=False)
        scores = semantic_inference(cls_logits, mask_logits)
        return (scores, cls_logits, mask_logits) if self.raw else scores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a MaskFormer to ONNX')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights; random weights when omitted')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size (default: the data preprocessor's size)")
    parser.add_argument('--dynamic-shape', action='store_true', help='H and W dynamic too')
    parser.add_argument('--raw', action='store_true',
                        help='also output the last layer class logits and mask logits')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (at least 17)')
    parser.add_argument('--check', action='store_true',
                        help='run the export with onnxruntime and print the max abs difference')
    parser.add_argument('--trust-checkpoint', action='store_true', help=TRUST_CHECKPOINT_HELP)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error(f'--opset must be at least 17 (LayerNormalization), got {args.opset}')
    return args


def build_model(config: str, checkpoint=None, cfg_options=None) -> Tuple[nn.Module, Config]:
    """The segmentor in eval mode on the CPU, SyncBN reverted, ``init_cfg`` dropped."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import init_model

    model = init_model(config, checkpoint, device='cpu', cfg_options=cfg_options)
    head = getattr(model, 'decode_head', None)
    if head is None or not hasattr(head, 'last_layer_logits'):
        raise ValueError(f'{config}: the model needs a mmseg_maskformer.MaskFormerHead as its '
                         f'decode head, got {type(head).__name__}')
    return revert_sync_batchnorm(model).eval(), model.cfg


def export(model: nn.Module, out: str, shape: Sequence[int], dynamic_shape: bool = False,
           raw: bool = False, opset: int = 18, metadata: dict = None) -> None:
    """Write ``model`` (a segmentor) as ONNX to ``out``, with ``metadata`` as string properties.

    Uses torch's TorchScript-based exporter (``dynamo=False``; present in torch 2.13 and 2.14):
    it exports the R50 MaskFormer in seconds, where the ``torch.export``-based one (which also
    works, and needs ``onnxscript``) took minutes on two CPU cores.
    """
    import onnx

    wrapper = OnnxMaskFormer(model, raw).eval()
    names = ['scores', 'cls_logits', 'mask_logits'] if raw else ['scores']
    spatial = {2: 'height', 3: 'width'} if dynamic_shape else {}
    axes = {'inputs': {0: 'batch', **spatial}, 'scores': {0: 'batch', **spatial}}
    if raw:
        axes.update(cls_logits={0: 'batch'}, mask_logits={0: 'batch', **spatial})
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The deprecation notice of the TorchScript exporter and tracer warnings about shapes
        # taken from tensors (they are, on purpose: H and W may be dynamic).
        warnings.simplefilter('ignore')
        path = os.path.join(tmp, 'model.onnx')
        torch.onnx.export(wrapper, (torch.randn(2, 3, *shape), ), path, dynamo=False,
                          opset_version=opset, input_names=['inputs'], output_names=names,
                          dynamic_axes=axes)
        proto = onnx.load(path)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, out)


def preprocessing_metadata(cfg: Config, model: nn.Module) -> dict:
    preprocessor = cfg.model.data_preprocessor
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    return dict(
        mean=json.dumps(list(preprocessor.get('mean') or [0.0, 0.0, 0.0])),
        std=json.dumps(list(preprocessor.get('std') or [1.0, 1.0, 1.0])),
        channel_order='RGB' if preprocessor.get('bgr_to_rgb', False) else 'BGR',
        classes=json.dumps(list(classes) if classes else None))


def max_abs_difference(model: nn.Module, out: str, shape: Sequence[int], raw: bool) -> float:
    """Largest |onnxruntime - PyTorch| over the outputs on a random batch of two."""
    import onnxruntime

    inputs = torch.randn(2, 3, *shape)
    with torch.no_grad():
        expected = OnnxMaskFormer(model, raw)(inputs)
    expected = expected if raw else (expected, )
    session = onnxruntime.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = session.run(None, {'inputs': inputs.numpy()})
    return max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected))


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint and args.checkpoint:
        trust_checkpoint(args.checkpoint)
    model, cfg = build_model(args.config, args.checkpoint, args.cfg_options)
    shape = args.shape or cfg.model.data_preprocessor.get('size')
    if shape is None:
        raise ValueError(f'{args.config}: the data preprocessor has no size; pass --shape H W')
    export(model, args.out, shape, args.dynamic_shape, args.raw, args.opset,
           preprocessing_metadata(cfg, model))
    size = 'H, W' if args.dynamic_shape else ', '.join(map(str, shape))
    print(f'wrote {args.out} (input (B, 3, {size}))', flush=True)
    if args.check:
        print(f'max abs difference onnxruntime vs PyTorch: '
              f'{max_abs_difference(model, args.out, shape, args.raw):.3g}', flush=True)


if __name__ == '__main__':
    main()
