# ADE20K-150, R50, 512×512 crops, batch 16 (8 GPUs × 2), 160k iterations (paper: 44.5 mIoU s.s.).
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', 'mmseg::_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
