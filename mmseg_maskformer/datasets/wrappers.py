"""The datasets behind mmengine's dataset wrappers, read from a config without building anything.

mmengine's ``RepeatDataset`` and ``ClassBalancedDataset`` wrap one dataset (``dataset=...``),
its ``ConcatDataset`` several (``datasets=[...]``); mmseg's ``MultiImageMixDataset`` has the same
shape. Tools that look at the files (``tools/check_dataset.py``) need the wrapped datasets.
"""
from typing import List


def underlying_dataset_configs(dataset_cfg: dict) -> List[dict]:
    """The configs of the datasets that ``dataset_cfg`` reads its samples from, through any
    nesting of wrappers; a dataset named twice (e.g. concatenated with itself) is listed once."""
    if 'datasets' in dataset_cfg:
        wrapped = dataset_cfg['datasets']
    elif 'dataset' in dataset_cfg:
        wrapped = [dataset_cfg['dataset']]
    else:
        return [dataset_cfg]
    found = []
    for child in wrapped:
        for cfg in underlying_dataset_configs(child):
            if all(repr(cfg) != repr(seen) for seen in found):
                found.append(cfg)
    return found
