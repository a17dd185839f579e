"""The datasets behind mmengine's dataset wrappers, read from configs."""
from mmseg_maskformer.datasets import underlying_dataset_configs


def test_nested_wrappers_give_each_dataset_once_in_order():
    a = dict(type='ShapesDataset', data_root='a')
    b = dict(type='ShapesDataset', data_root='b')
    repeated = dict(type='RepeatDataset', times=2, dataset=dict(a))
    config = dict(type='ConcatDataset', datasets=[repeated, dict(b), dict(a)])
    assert underlying_dataset_configs(config) == [a, b]
    assert underlying_dataset_configs(a) == [a]
