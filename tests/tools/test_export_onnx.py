"""tools/export_onnx.py: onnxruntime's outputs against PyTorch's encode_decode (random weights)."""
import json
import os

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from cli_testing import PANOPTIC_CONFIG, REPO

import export_onnx
from mmseg_maskformer import panoptic_inference

R50_CONFIG = os.path.join(REPO, 'configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py')


def run_onnx(path, inputs):
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})


def encode_decode(model, inputs):
    """What mmseg's EncoderDecoder computes for whole-image inference of this batch."""
    shape = tuple(inputs.shape[-2:])
    metas = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)] * inputs.shape[0]
    with torch.no_grad():
        return model.encode_decode(inputs, metas)


@pytest.fixture(scope='module')
def tiny_export(tmp_path_factory):
    """The tiny panoptic Shapes model (random weights, sharper class logits so that queries
    predict several classes), dynamic shape, raw outputs."""
    path = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    model, cfg = export_onnx.build_model(PANOPTIC_CONFIG)
    with torch.no_grad():
        model.decode_head.cls_embed.weight.mul_(10)
    export_onnx.export(model, path, (128, 128), dynamic_shape=True, raw=True,
                       metadata=export_onnx.preprocessing_metadata(cfg, model))
    return model, path


def test_command_line_exports_and_checks(tmp_path, capsys):
    path = str(tmp_path / 'cli.onnx')
    export_onnx.main([PANOPTIC_CONFIG, '--out', path, '--shape', '64', '96', '--check'])
    out = capsys.readouterr().out
    assert float(out.split('max abs difference onnxruntime vs PyTorch:')[1]) <= 1e-4
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape[2:] == [64, 96]
    assert [o.name for o in session.get_outputs()] == ['scores']


@pytest.mark.parametrize('shape', [(2, 128, 128), (1, 96, 160), (3, 61, 77)])
def test_tiny_model_scores_and_logits_equal_pytorch(tiny_export, shape):
    model, path = tiny_export
    inputs = torch.randn(shape[0], 3, *shape[1:])
    scores, cls_logits, mask_logits = run_onnx(path, inputs)
    expected = encode_decode(model, inputs)
    assert scores.shape == tuple(expected.shape) == (shape[0], 6) + shape[1:]
    np.testing.assert_allclose(scores, expected.numpy(), rtol=0, atol=1e-4)
    with torch.no_grad():
        all_cls, all_masks = model.decode_head(model.extract_feat(inputs))
    np.testing.assert_allclose(cls_logits, all_cls[-1].numpy(), rtol=0, atol=1e-4)
    assert mask_logits.shape == (shape[0], 20) + shape[1:]


def test_panoptic_inference_on_onnx_numpy_outputs(tiny_export):
    model, path = tiny_export
    inputs = torch.randn(1, 3, 128, 128)
    _, cls_logits, mask_logits = run_onnx(path, inputs)
    with torch.no_grad():
        all_cls, all_masks = model.decode_head(model.extract_feat(inputs))
        torch_masks = torch.nn.functional.interpolate(all_masks[-1], size=(128, 128),
                                                      mode='bilinear', align_corners=False)
    np.testing.assert_allclose(mask_logits, torch_masks.numpy(), rtol=0, atol=1e-4)
    # Thresholds 0 and every class a thing class, so that random weights give several segments.
    # Same arrays as tensors: the reference
    # (PyTorch's own logits differ in the last bits, which moves pixels where two queries tie).
    things = range(6)
    got_map, got_segments = panoptic_inference(cls_logits[0], mask_logits[0], 0.0, 0.0, things)
    want_map, want_segments = panoptic_inference(torch.from_numpy(cls_logits[0]),
                                                 torch.from_numpy(mask_logits[0]), 0.0, 0.0, things)
    assert isinstance(got_map, np.ndarray) and got_map.dtype == np.int64
    assert len(want_segments) > 1
    np.testing.assert_array_equal(got_map, want_map.numpy())
    assert got_segments == want_segments


def test_metadata_records_the_preprocessing(tiny_export):
    _, path = tiny_export
    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    assert json.loads(props['mean']) == [123.675, 116.28, 103.53]
    assert json.loads(props['std']) == [58.395, 57.12, 57.375]
    assert props['channel_order'] == 'RGB'
    opset = {o.domain: o.version for o in onnx.load(path, load_external_data=False).opset_import}
    assert opset[''] >= 17


def test_r50_at_512_equals_pytorch(tmp_path):
    path = str(tmp_path / 'r50.onnx')
    model, _ = export_onnx.build_model(R50_CONFIG)
    export_onnx.export(model, path, (512, 512))
    inputs = torch.randn(1, 3, 512, 512)
    (scores, ) = run_onnx(path, inputs)
    expected = encode_decode(model, inputs)
    assert scores.shape == (1, 150, 512, 512)
    np.testing.assert_allclose(scores, expected.numpy(), rtol=0, atol=1e-4)


def test_a_model_without_maskformer_head_is_refused():
    fcn = os.path.join(REPO, 'configs/fcn/fcn_r18-tiny-d8_1xb8-2k_shapes-128x128.py')
    with pytest.raises(ValueError, match='MaskFormerHead'):
        export_onnx.build_model(fcn)



class _Stop(Exception):
    pass


@pytest.mark.parametrize('flag', [True, False])
def test_trust_checkpoint_flag_trusts_the_named_checkpoint_before_it_loads(monkeypatch, tmp_path,
                                                                          flag):
    calls = []
    monkeypatch.setattr(export_onnx, 'trust_checkpoint', lambda path: calls.append(('trust', path)))

    def build_model(config, checkpoint=None, cfg_options=None):
        calls.append(('load', checkpoint))
        raise _Stop

    monkeypatch.setattr(export_onnx, 'build_model', build_model)
    with pytest.raises(_Stop):
        export_onnx.main([PANOPTIC_CONFIG, 'weights.pth', '--out', str(tmp_path / 'm.onnx')] +
                         (['--trust-checkpoint'] if flag else []))
    assert calls == ([('trust', 'weights.pth')] if flag else []) + [('load', 'weights.pth')]
