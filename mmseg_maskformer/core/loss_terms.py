"""The loss terms and match costs of the criterion and the matcher, configured as mmdet composes
them (``loss_cls`` / ``loss_mask`` / ``loss_dice`` dicts, a list of ``match_costs``), parsed into
the few numbers the fused ops take.

The type names are mmdet's (an ``mmdet.`` prefix, as in mmseg's MaskFormer and Mask2Former
configs, is accepted), so a loss block copied from those configs means here what it means there;
the computation is this package's (one fused focal-or-BCE + dice op for the masks). Options of
mmdet's classes that these ops do not implement are refused with an error, not ignored.

Defaults, as in the papers' official code (facebookresearch/MaskFormer and Mask2Former
``configs/*/Base-*.yaml``): MaskFormer CE 1 (∅ weight 0.1), focal 20 (α 0.25, γ 2), dice 1, and
the same match costs; Mask2Former CE 2, BCE 5, dice 5, and the same match costs.
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch

LOSS_TYPES = {
    'loss_cls': ('CrossEntropyLoss', ),
    'loss_mask': ('FocalLoss', 'CrossEntropyLoss'),
    'loss_dice': ('DiceLoss', ),
}
COST_TYPES = ('ClassificationCost', 'FocalLossCost', 'CrossEntropyLossCost', 'DiceCost')


@dataclass(frozen=True)
class MaskTerm:
    """One sigmoid mask term: ``alpha < 0`` disables the α weighting, ``gamma = 0`` with it is
    binary cross-entropy; ``eps`` is the dice smoothing."""
    weight: float
    alpha: float = 0.25
    gamma: float = 2.0
    eps: float = 1.0


BCE = dict(alpha=-1.0, gamma=0.0)


@dataclass(frozen=True)
class LossTerms:
    """``loss_cls`` weight and per-class weights (K+1, ∅ last); the mask term (focal or BCE) and
    the dice term, each None when not configured."""
    cls_weight: float
    class_weights: torch.Tensor
    mask: Optional[MaskTerm]
    dice: Optional[MaskTerm]


@dataclass(frozen=True)
class MatchCosts:
    """Weights of the class, mask (focal or BCE) and dice costs, 0 where a cost is not listed,
    and the parameters the pairwise op takes."""
    cls_weight: float
    mask_weight: float
    dice_weight: float
    alpha: float = 0.25
    gamma: float = 2.0
    eps: float = 1.0


# The official terms and costs (read-only: copy before changing one).
MASKFORMER_LOSSES = dict(
    loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0, no_object_weight=0.1),
    loss_mask=dict(type='FocalLoss', loss_weight=20.0, alpha=0.25, gamma=2.0),
    loss_dice=dict(type='DiceLoss', loss_weight=1.0, eps=1.0))
MASKFORMER_MATCH_COSTS = (dict(type='ClassificationCost', weight=1.0),
                          dict(type='FocalLossCost', weight=20.0, alpha=0.25, gamma=2.0),
                          dict(type='DiceCost', weight=1.0, eps=1.0))
# Mask2Former's mask term and cost are sigmoid binary cross-entropy.
MASK2FORMER_LOSSES = dict(
    loss_cls=dict(type='CrossEntropyLoss', loss_weight=2.0, no_object_weight=0.1),
    loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=5.0),
    loss_dice=dict(type='DiceLoss', loss_weight=5.0, eps=1.0))
MASK2FORMER_MATCH_COSTS = (dict(type='ClassificationCost', weight=2.0),
                           dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                           dict(type='DiceCost', weight=5.0, eps=1.0))


def _type_name(cfg: Mapping, what: str, allowed: Sequence[str]) -> str:
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise ValueError(f'{what} must be a dict with a type (one of {", ".join(allowed)}), '
                         f'got {cfg!r}')
    name = str(cfg['type'])
    name = name[len('mmdet.'):] if name.startswith('mmdet.') else name
    if name not in allowed:
        raise ValueError(f'{what}: unknown type {cfg["type"]!r}; supported: {", ".join(allowed)}')
    return name


def _options(cfg: Mapping, what: str, accepted: Mapping[str, object],
             required: Mapping[str, object] = {}) -> dict:
    """``cfg``'s options with ``accepted`` defaults; ``required`` options may only take the
    given value (mmdet options these ops do not implement)."""
    options = {key: value for key, value in cfg.items() if key != 'type'}
    unknown = set(options) - set(accepted) - set(required)
    if unknown:
        raise ValueError(f'{what} ({cfg["type"]}): unsupported options {sorted(unknown)}; '
                         f'supported: {sorted(set(accepted) | set(required))}')
    for key, value in required.items():
        if key in options and options[key] != value:
            raise ValueError(f'{what} ({cfg["type"]}): only {key}={value!r} is implemented, got '
                             f'{options[key]!r}')
    return {key: options.get(key, default) for key, default in accepted.items()}


def _class_weights(options: dict, num_classes: int) -> torch.Tensor:
    if options['class_weight'] is not None and options['no_object_weight'] is not None:
        raise ValueError('loss_cls: give either class_weight (all K+1 weights, as mmdet) or '
                         'no_object_weight (the ∅ weight, the others 1), not both')
    if options['class_weight'] is not None:
        weights = torch.as_tensor(options['class_weight'], dtype=torch.float32)
        if weights.shape != (num_classes + 1, ):
            raise ValueError(f'loss_cls.class_weight needs {num_classes + 1} values (K classes '
                             f'and ∅ last), got {tuple(weights.shape)}')
        return weights
    weights = torch.ones(num_classes + 1)
    no_object = options['no_object_weight']
    weights[-1] = 1.0 if no_object is None else no_object
    return weights


def parse_losses(num_classes: int, loss_cls: Mapping, loss_mask: Optional[Mapping],
                 loss_dice: Optional[Mapping]) -> LossTerms:
    """The criterion's terms from mmdet-style dicts.

    ``loss_cls``: ``CrossEntropyLoss`` (softmax over K+1) with ``loss_weight`` and either
    ``no_object_weight`` (the ∅ weight, others 1; independent of K, so a config can change
    ``num_classes``) or mmdet's ``class_weight`` list of K+1; neither means uniform, as mmdet.
    ``loss_mask``: ``FocalLoss`` (``alpha``, ``gamma``) or ``CrossEntropyLoss`` with
    ``use_sigmoid=True`` (binary cross-entropy), or None. ``loss_dice``: ``DiceLoss`` (``eps``,
    ``naive_dice=True``: 1 − (2|p·t| + ε) / (|p| + |t| + ε), the official form), or None.
    Every term is a mean: per mask over its pixels or points, then the sum over the matched masks
    divided by the number of ground-truth masks (mmdet's ``avg_factor``).
    """
    _type_name(loss_cls, 'loss_cls', LOSS_TYPES['loss_cls'])
    options = _options(loss_cls, 'loss_cls',
                       dict(loss_weight=1.0, class_weight=None, no_object_weight=None),
                       dict(use_sigmoid=False, reduction='mean', use_mask=False))
    cls_weight, class_weights = options['loss_weight'], _class_weights(options, num_classes)
    mask = dice = None
    if loss_mask is not None:
        name = _type_name(loss_mask, 'loss_mask', LOSS_TYPES['loss_mask'])
        if name == 'FocalLoss':
            options = _options(loss_mask, 'loss_mask',
                               dict(loss_weight=1.0, alpha=0.25, gamma=2.0),
                               dict(use_sigmoid=True, reduction='mean'))
            mask = MaskTerm(options['loss_weight'], options['alpha'], options['gamma'])
        else:
            if loss_mask.get('use_sigmoid') is not True:
                raise ValueError('loss_mask: CrossEntropyLoss needs use_sigmoid=True (binary '
                                 'cross-entropy of each mask)')
            options = _options(loss_mask, 'loss_mask', dict(loss_weight=1.0),
                               dict(use_sigmoid=True, reduction='mean', use_mask=False))
            mask = MaskTerm(options['loss_weight'], **BCE)
    if loss_dice is not None:
        _type_name(loss_dice, 'loss_dice', LOSS_TYPES['loss_dice'])
        options = _options(loss_dice, 'loss_dice', dict(loss_weight=1.0, eps=1.0),
                           dict(use_sigmoid=True, activate=True, naive_dice=True,
                                reduction='mean'))
        dice = MaskTerm(options['loss_weight'], eps=options['eps'])
    return LossTerms(cls_weight, class_weights, mask, dice)


def parse_match_costs(match_costs: Sequence[Mapping]) -> MatchCosts:
    """The matcher's cost weights from a list of mmdet-style cost dicts: ``ClassificationCost``
    (−softmax probability of the target class), ``FocalLossCost`` (``alpha``, ``gamma``;
    ``binary_input=True``: masks) or ``CrossEntropyLossCost`` (``use_sigmoid=True``), and
    ``DiceCost`` (``eps``, ``pred_act=True``, ``naive_dice=True``); each with a ``weight``, each
    type at most once, one mask cost at most."""
    if isinstance(match_costs, Mapping) or not len(match_costs):
        raise ValueError(f'match_costs must be a non-empty list of cost dicts, got {match_costs!r}')
    seen = {}
    for cost in match_costs:
        name = _type_name(cost, 'match cost', COST_TYPES)
        if name in seen:
            raise ValueError(f'match cost {name} is listed twice')
        seen[name] = cost
    if 'FocalLossCost' in seen and 'CrossEntropyLossCost' in seen:
        raise ValueError('match costs: FocalLossCost and CrossEntropyLossCost are both mask '
                         'costs; list one of them')
    weights = dict(cls_weight=0.0, mask_weight=0.0, dice_weight=0.0)
    params = dict(alpha=0.25, gamma=2.0, eps=1.0)
    if 'ClassificationCost' in seen:
        weights['cls_weight'] = _options(seen['ClassificationCost'], 'match cost',
                                         dict(weight=1.0))['weight']
    if 'FocalLossCost' in seen:
        options = _options(seen['FocalLossCost'], 'match cost',
                           dict(weight=1.0, alpha=0.25, gamma=2.0), dict(binary_input=True))
        weights['mask_weight'] = options['weight']
        params.update(alpha=options['alpha'], gamma=options['gamma'])
    if 'CrossEntropyLossCost' in seen:
        cost = seen['CrossEntropyLossCost']
        if cost.get('use_sigmoid') is not True:
            raise ValueError('match cost CrossEntropyLossCost needs use_sigmoid=True (binary '
                             'cross-entropy of each mask)')
        weights['mask_weight'] = _options(cost, 'match cost', dict(weight=1.0),
                                          dict(use_sigmoid=True))['weight']
        params.update(BCE)
    if 'DiceCost' in seen:
        options = _options(seen['DiceCost'], 'match cost', dict(weight=1.0, eps=1.0),
                           dict(pred_act=True, naive_dice=True))
        weights['dice_weight'] = options['weight']
        params['eps'] = options['eps']
    if all(weight == 0 for weight in weights.values()):
        raise ValueError('match costs: at least one weight must be non-zero')
    return MatchCosts(**weights, **params)
