"""Layer 2: matching costs, Hungarian assignment, the criterion and the inference rules.

Plain torch + scipy functions and classes, no registries.
"""
from .criterion import SetCriterion, average_num_masks
from .loss_terms import (MASK2FORMER_LOSSES, MASK2FORMER_MATCH_COSTS, MASKFORMER_LOSSES,
                         MASKFORMER_MATCH_COSTS, parse_losses, parse_match_costs)
from .inference import (merge_panoptic_segments, panoptic_inference, panoptic_segmentation,
                        semantic_inference)
from .mask_functions import LOSS_IMPLS, get_mask_functions
from .matching import HungarianMatcher, NonFiniteCostError, classification_cost, hungarian_assignment
from .targets import concatenated, pack_masks, semantic_to_segments

__all__ = [
    'HungarianMatcher', 'LOSS_IMPLS', 'MASK2FORMER_LOSSES', 'MASK2FORMER_MATCH_COSTS',
    'MASKFORMER_LOSSES', 'MASKFORMER_MATCH_COSTS', 'parse_losses', 'parse_match_costs', 'NonFiniteCostError', 'SetCriterion', 'average_num_masks',
    'classification_cost', 'concatenated', 'get_mask_functions', 'hungarian_assignment',
    'merge_panoptic_segments', 'pack_masks', 'panoptic_inference', 'panoptic_segmentation',
    'semantic_inference', 'semantic_to_segments'
]
