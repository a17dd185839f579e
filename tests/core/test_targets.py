import pytest
import torch

from mmseg_maskformer.core import concatenated, pack_masks, semantic_to_segments


def test_semantic_to_segments_hand_case():
    sem_seg = torch.tensor([[0, 0, 2], [255, 2, 2], [0, 255, 255]])
    labels, masks = semantic_to_segments(sem_seg[None], num_classes=3, ignore_index=255)
    assert labels.tolist() == [0, 2]
    assert masks.dtype == torch.bool
    assert masks[0].int().tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert masks[1].int().tolist() == [[0, 0, 1], [0, 1, 1], [0, 0, 0]]


def test_semantic_to_segments_all_ignored_gives_no_segment():
    labels, masks = semantic_to_segments(torch.full((4, 5), 255), num_classes=3)
    assert labels.shape == (0,) and masks.shape == (0, 4, 5)


def test_semantic_to_segments_rejects_out_of_range_label():
    with pytest.raises(ValueError, match='label 7 out of range'):
        semantic_to_segments(torch.tensor([[0, 7]]), num_classes=3)


def test_semantic_to_segments_rejects_float_maps():
    with pytest.raises(TypeError, match='integer class ids'):
        semantic_to_segments(torch.zeros(2, 2), num_classes=3)


def test_packed_masks_concatenate_without_a_copy():
    masks = [torch.rand(count, 5, 4) > 0.5 for count in (3, 0, 2)]
    packed = pack_masks(masks)
    assert [p.shape for p in packed] == [m.shape for m in masks]
    for piece, mask in zip(packed, masks):
        assert torch.equal(piece, mask)
    joined = concatenated(packed)
    assert joined.data_ptr() == packed[0].data_ptr()  # a view of the buffer
    assert torch.equal(joined, torch.cat(masks))


@pytest.mark.parametrize('pieces', [
    lambda packed: packed[::-1],                        # out of order
    lambda packed: [packed[0], packed[2]],              # a gap
    lambda packed: [p.transpose(1, 2) for p in packed],  # not contiguous
    lambda packed: [p.clone() for p in packed],         # separate buffers
])
def test_concatenated_copies_other_masks(pieces):
    packed = pack_masks([torch.rand(count, 5, 5) > 0.5 for count in (2, 1, 3)])
    masks = pieces(packed)
    joined = concatenated(masks)
    assert torch.equal(joined, torch.cat(masks))
    assert joined.untyped_storage().data_ptr() != packed[0].untyped_storage().data_ptr()  # a copy
