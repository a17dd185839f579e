"""The categories of the released COCO-panoptic-format annotation files the configs name.

:class:`~mmseg_maskformer.datasets.CocoPanopticSegDataset` takes its classes, palette and
``thing_classes`` from the ``categories`` of its annotation JSON, so a config alone does not name
them. These are the categories of the files the zoo and Shapes configs read, for when the file is
not on disk (e.g. converting a released checkpoint): each entry lists ``name``, ``isthing`` and,
where the file has one, ``color``, in the file's order (which gives the label ids).
"""
import os.path as osp
from typing import List, Optional

# ADE20K panoptic (150 classes), as the official preparation script writes ade20k_panoptic_*.json
# (facebookresearch/MaskFormer datasets/prepare_ade20k_pan_seg.py: ADE20K_SEM_SEG_CATEGORIES and
# PALETTE); the things are those of mask_former/data/datasets/register_ade20k_panoptic.py
# (ADE20K_150_CATEGORIES, isthing=1): 100 of the 150.
ADE20K_PANOPTIC_CLASSES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road, route', 'bed', 'window ',
    'grass', 'cabinet', 'sidewalk, pavement', 'person', 'earth, ground', 'door', 'table',
    'mountain, mount', 'plant', 'curtain', 'chair', 'car', 'water', 'painting, picture', 'sofa',
    'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk',
    'rock, stone', 'wardrobe, closet, press', 'lamp', 'tub', 'rail', 'cushion',
    'base, pedestal, stand', 'box', 'column, pillar', 'signboard, sign',
    'chest of drawers, chest, bureau, dresser', 'counter', 'sand', 'sink', 'skyscraper',
    'fireplace', 'refrigerator, icebox', 'grandstand, covered stand', 'path', 'stairs', 'runway',
    'case, display case, showcase, vitrine', 'pool table, billiard table, snooker table', 'pillow',
    'screen door, screen', 'stairway, staircase', 'river', 'bridge, span', 'bookcase',
    'blind, screen', 'coffee table', 'toilet, can, commode, crapper, pot, potty, stool, throne',
    'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm, palm tree', 'kitchen island',
    'computer', 'swivel chair', 'boat', 'bar', 'arcade machine',
    'hovel, hut, hutch, shack, shanty', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning, sunshade, sunblind', 'street lamp', 'booth', 'tv', 'plane', 'dirt track', 'clothes',
    'pole', 'land, ground, soil', 'bannister, banister, balustrade, balusters, handrail',
    'escalator, moving staircase, moving stairway', 'ottoman, pouf, pouffe, puff, hassock',
    'bottle', 'buffet, counter, sideboard', 'poster, posting, placard, notice, bill, card',
    'stage', 'van', 'ship', 'fountain',
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter', 'canopy',
    'washer, automatic washer, washing machine', 'plaything, toy', 'pool', 'stool', 'barrel, cask',
    'basket, handbasket', 'falls', 'tent', 'bag', 'minibike, motorbike', 'cradle', 'oven', 'ball',
    'food, solid food', 'step, stair', 'tank, storage tank', 'trade name', 'microwave', 'pot',
    'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket, cover', 'sculpture',
    'hood, exhaust hood', 'sconce', 'vase', 'traffic light', 'tray', 'trash can', 'fan', 'pier',
    'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator',
    'glass, drinking glass', 'clock', 'flag',)
ADE20K_PANOPTIC_PALETTE = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 200), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),)
ADE20K_PANOPTIC_THING_IDS = (
    7, 8, 10, 12, 14, 15, 18, 19, 20, 22, 23, 24, 27, 30, 31, 32, 33, 35, 36, 37, 38, 39, 41, 42,
    43, 44, 45, 47, 49, 50, 53, 55, 56, 57, 58, 62, 64, 65, 66, 67, 69, 70, 71, 72, 73, 74, 75, 76,
    78, 80, 81, 82, 83, 85, 86, 87, 88, 89, 90, 92, 93, 95, 97, 98, 102, 103, 104, 107, 108, 110,
    111, 112, 115, 116, 118, 119, 120, 121, 123, 124, 125, 126, 127, 129, 130, 132, 133, 134, 135,
    136, 137, 138, 139, 142, 143, 144, 146, 147, 148, 149,)


def _coco_panoptic_categories() -> List[dict]:
    # COCO 2017 panoptic: 80 things then 53 stuff classes, in the id order of
    # panoptic_{train,val}2017.json, whose categories carry no colour. mmdet 3.x's
    # CocoPanopticDataset.METAINFO lists the same names in the same order.
    from mmdet.datasets import CocoPanopticDataset
    things = set(CocoPanopticDataset.METAINFO['thing_classes'])
    return [dict(name=name, isthing=int(name in things))
            for name in CocoPanopticDataset.METAINFO['classes']]


def _ade20k_panoptic_categories() -> List[dict]:
    things = set(ADE20K_PANOPTIC_THING_IDS)
    return [dict(name=name, isthing=int(i in things), color=list(colour))
            for i, (name, colour) in enumerate(zip(ADE20K_PANOPTIC_CLASSES,
                                                   ADE20K_PANOPTIC_PALETTE))]


def _shapes_panoptic_categories() -> List[dict]:
    from mmseg_maskformer.datasets.shapes import CATEGORIES
    return [dict(category) for category in CATEGORIES]


_RELEASED = {
    'panoptic_train2017.json': _coco_panoptic_categories,
    'panoptic_val2017.json': _coco_panoptic_categories,
    'ade20k_panoptic_train.json': _ade20k_panoptic_categories,
    'ade20k_panoptic_val.json': _ade20k_panoptic_categories,
    # What mmseg_maskformer.datasets.generate_shapes_dataset writes.
    'panoptic_train.json': _shapes_panoptic_categories,
    'panoptic_val.json': _shapes_panoptic_categories,
}


def released_panoptic_categories(ann_file: str) -> Optional[List[dict]]:
    """The categories of a known annotation file (by its file name), or ``None``."""
    categories = _RELEASED.get(osp.basename(ann_file))
    return None if categories is None else categories()
