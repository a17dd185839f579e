"""Checkpoints for the tests: random weights of a config (this module), and one tiny trained
Shapes model shared by every test file (``tests/conftest.py``, fixture ``trained_shapes``)."""
import torch


def random_checkpoint(config: str, path: str) -> str:
    """A checkpoint of ``config``'s model with random weights and the Shapes metainfo, as
    mmengine's runner saves it (``state_dict`` + ``meta.dataset_meta``).

    Freshly initialised heads predict one class everywhere; unit-variance noise on the head's
    weights makes several classes and segments appear, so that comparisons of maps can fail."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_maskformer.datasets import ShapesDataset

    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for parameter in model.decode_head.parameters():
            parameter.add_(torch.randn_like(parameter))
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(ShapesDataset.METAINFO))), path)
    return path


def checkpoint_naming_fewer_classes(source: str, path: str, count: int) -> str:
    """A copy of checkpoint ``source`` whose dataset meta names only its first ``count`` classes."""
    checkpoint = torch.load(source, weights_only=True)
    meta = checkpoint['meta']['dataset_meta']
    checkpoint['meta']['dataset_meta'] = dict(meta, classes=meta['classes'][:count],
                                              palette=meta['palette'][:count])
    torch.save(checkpoint, path)
    return path


class Payload:
    """Unpickling this runs ``code`` (what a malicious checkpoint would do)."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code, )
