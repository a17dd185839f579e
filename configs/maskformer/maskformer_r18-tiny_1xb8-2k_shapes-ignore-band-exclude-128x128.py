# The ignore-band experiment with ignore_mode='exclude': the band counts in no mask loss and no
# matching cost.
_base_ = ['./maskformer_r18-tiny_1xb8-2k_shapes-ignore-band-128x128.py']
model = dict(decode_head=dict(ignore_mode='exclude'))
