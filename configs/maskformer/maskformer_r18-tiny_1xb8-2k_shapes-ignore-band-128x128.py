# The demo with ignore pixels: rows 40%-60% of every training label map are set to 255
# (IgnoreBand); validation uses the full labels. With the official ignore_mode='negative' the band
# is a negative in every mask; compare with the '-exclude' config, which leaves it out of every
# mask loss and matching cost.
_base_ = ['./maskformer_r18-tiny_1xb8-2k_shapes-128x128.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='IgnoreBand', top=0.4, bottom=0.6),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(decode_head=dict(ignore_mode='negative'))
