"""Converters of third-party MaskFormer and Mask2Former checkpoints into this project's mmseg
models, and the ``dataset_meta`` (class names, colours) a checkpoint carries."""
import importlib

# Each name is imported from its module on first use: the Hugging Face converter needs
# transformers, which the inference tools reading checkpoint metainfo (tools/infer.py) do not.
_MODULE_OF = {
    'check_state_dict_fits': 'key_mapping',
    'checkpoint_dataset_meta': 'dataset_meta',
    'config_dataset_meta': 'dataset_meta',
    'convert_hf_mask2former': 'hf_mask2former',
    'convert_hf_maskformer': 'hf',
    'convert_official_mask2former': 'official_mask2former',
    'convert_official_maskformer': 'official',
    'load_checkpoint_file': 'checkpoint_files',
    'official_model_type': 'official_mask2former',
    'random_palette': 'dataset_meta',
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f'.{_MODULE_OF[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
