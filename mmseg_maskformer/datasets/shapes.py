"""Shapes: a deterministic procedural dataset for semantic and panoptic segmentation.

Needs numpy and Pillow only, so that the data can be made before (or without) MMSegmentation.

Each image shows a smooth background, sometimes a band of "water" along the bottom, and one to
six textured shapes. Every class has its own outline *and* its own texture family, while colours
come from one shared, jittered palette: a tiny network can learn the classes quickly, but not from
the colour of a single pixel.

Category ids equal the semantic class ids (``0 .. len(CLASSES) - 1``), including the stuff class
``background`` whose id is 0. Panoptic segment ids are ``category_id * 1000 + k`` with ``k >= 1``
numbering the instances of a class in drawing order (stuff classes have a single segment,
``k == 1``), so no segment is 0, the COCO-panoptic void id, and ``id // 1000`` is the category.
"""
import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

# Bump whenever the rendered content changes, so that existing copies are regenerated.
VERSION = 1

CLASSES = ('background', 'water', 'circle', 'rectangle', 'triangle', 'star')
STUFF_CLASSES = CLASSES[:2]
THING_CLASSES = CLASSES[2:]
# Label colours for visualisation; the images draw their colours from _BASE_COLOURS.
PALETTE = ((0, 0, 0), (0, 120, 255), (230, 50, 50), (60, 200, 60), (250, 200, 0), (190, 70, 230))
CATEGORIES = tuple(
    dict(id=i, name=name, isthing=int(name in THING_CLASSES), color=list(color))
    for i, (name, color) in enumerate(zip(CLASSES, PALETTE)))
SPLITS = ('train', 'val')
_FOLDERS = ('img_dir', 'ann_dir', 'panoptic')  # images, semantic maps, panoptic PNGs
OFFSET = 1000  # panoptic segment id = category_id * OFFSET + instance number (1-based)

# Every region takes its colours from this one list, so colour alone never identifies a class.
_BASE_COLOURS = np.array(
    [(220, 60, 60), (60, 170, 70), (60, 90, 220), (235, 200, 50), (60, 200, 210), (200, 80, 200),
     (240, 140, 40), (120, 70, 170), (225, 225, 225), (70, 70, 70), (150, 110, 70),
     (150, 200, 120)],
    dtype=np.float32)
# The two colours of a texture differ enough for the pattern to survive jitter and noise.
_DISTINCT_COLOURS = [
    np.flatnonzero(np.linalg.norm(_BASE_COLOURS - c, axis=1) >= 100) for c in _BASE_COLOURS]
_INSTANCE_RANGE = (1, 6)
# A shape is placed only where it leaves every earlier shape at least this share visible, so
# that shapes may overlap without leaving slivers that no model could recognise.
_MIN_VISIBLE = 0.6
_PLACEMENT_TRIES = 20


class Sample(NamedTuple):
    image: np.ndarray  # (H, W, 3) uint8 RGB
    semantic: np.ndarray  # (H, W) uint8 class ids
    panoptic: np.ndarray  # (H, W) int32 segment ids, category_id * OFFSET + k
    segments_info: List[dict]  # COCO-panoptic segments, in drawing order


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: any image can be rendered alone, in any order."""
    # crc32 rather than hash(): str hashes change between processes.
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """COCO-panoptic PNG encoding: id = R + 256 * G + 256**2 * B."""
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`id2rgb`: (..., 3) RGB to int32 segment ids."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


# Textures return a map in [0, 1] that mixes the region's two colours.

def _rotated(grid: Tuple[np.ndarray, np.ndarray], angle: float) -> Tuple[np.ndarray, np.ndarray]:
    yy, xx = grid
    c, s = np.cos(angle), np.sin(angle)
    return xx * c + yy * s, -xx * s + yy * c


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = Image.fromarray(rng.random((cells, cells), dtype=np.float32), mode='F')
    return np.asarray(coarse.resize((size, size), Image.BILINEAR))


def _texture_smooth(rng, grid, size):
    u, _ = _rotated(grid, rng.uniform(0, 2 * np.pi))
    ramp = (u - u.min()) / max(float(np.ptp(u)), 1.0)
    return 0.7 * ramp + 0.3 * _smooth_noise(rng, size, 4)


def _texture_waves(rng, grid, size):
    yy, xx = grid
    period, amp, wavelength = rng.uniform(5, 8), rng.uniform(1, 3), rng.uniform(16, 32)
    bend = amp * np.sin(2 * np.pi * xx / wavelength + rng.uniform(0, 2 * np.pi))
    return 0.5 + 0.5 * np.sin(2 * np.pi * (yy + bend) / period + rng.uniform(0, 2 * np.pi))


def _texture_dots(rng, grid, size):
    u, v = _rotated(grid, rng.uniform(0, np.pi / 2))
    spacing = rng.uniform(6, 9)
    radius = spacing * rng.uniform(0.22, 0.32)
    du = (u + rng.uniform(0, spacing)) % spacing - spacing / 2
    dv = (v + rng.uniform(0, spacing)) % spacing - spacing / 2
    return (du * du + dv * dv < radius * radius).astype(np.float32)


def _texture_checks(rng, grid, size):
    u, v = _rotated(grid, rng.uniform(0, np.pi / 2))
    cell = rng.uniform(4, 7)
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)


def _texture_stripes(rng, grid, size):
    u, _ = _rotated(grid, rng.uniform(0, np.pi))
    period = rng.uniform(6, 10)
    return ((u / period + rng.uniform(0, 1)) % 1 < 0.5).astype(np.float32)


def _texture_speckle(rng, grid, size):
    # Blocky two-colour noise: fine grain, no orientation, unlike stripes, checks or dots.
    block = int(rng.integers(2, 4))
    cells = -(-size // block)
    coarse = rng.random((cells, cells)) < 0.5
    return np.kron(coarse, np.ones((block, block)))[:size, :size].astype(np.float32)


_TEXTURES: Dict[str, Callable] = dict(
    background=_texture_smooth, water=_texture_waves, circle=_texture_dots,
    rectangle=_texture_checks, triangle=_texture_stripes, star=_texture_speckle)


def _colour_pair(rng: np.random.Generator, contrast: float) -> Tuple[np.ndarray, np.ndarray]:
    first = rng.integers(len(_BASE_COLOURS))
    second = rng.choice(_DISTINCT_COLOURS[first])
    jitter = rng.normal(0, 18, size=(2, 3))
    c1 = _BASE_COLOURS[first] + jitter[0]
    c2 = _BASE_COLOURS[second] + jitter[1]
    # Low contrast keeps stuff regions calm next to the high-contrast shapes.
    return c1, c1 + contrast * (c2 - c1)


# Outlines: a polygon or ellipse in Pillow's drawing coordinates.

def _polygon(cx, cy, radii, angles):
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for r, a in zip(radii, angles)]


def _draw_outline(draw: ImageDraw.ImageDraw, name: str, rng: np.random.Generator, cx: float,
                  cy: float, radius: float) -> None:
    rot = rng.uniform(0, 2 * np.pi)
    if name == 'circle':
        r = 0.85 * radius  # roughly the area of the other outlines of the same radius
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif name == 'rectangle':
        aspect = rng.uniform(0.5, 1.0)
        half = np.arctan(aspect)
        angles = rot + np.array([half, np.pi - half, np.pi + half, -half])
        draw.polygon(_polygon(cx, cy, [radius] * 4, angles), fill=1)
    elif name == 'triangle':
        angles = rot + np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.25, 0.25, size=3)
        draw.polygon(_polygon(cx, cy, radius * rng.uniform(0.95, 1.15, size=3), angles), fill=1)
    elif name == 'star':
        points = int(rng.integers(5, 7))
        radii = np.where(np.arange(2 * points) % 2 == 0, 1.1 * radius, 0.5 * radius)
        angles = rot + np.arange(2 * points) * np.pi / points
        draw.polygon(_polygon(cx, cy, radii, angles), fill=1)
    else:
        raise ValueError(f'no outline for class {name!r}')


def _shape_mask(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    radius = size * rng.uniform(0.11, 0.22)
    cx, cy = rng.uniform(0, size, size=2)
    canvas = Image.new('L', (size, size), 0)
    _draw_outline(ImageDraw.Draw(canvas), name, rng, cx, cy, radius)
    return np.asarray(canvas, dtype=bool)


def _water_mask(rng: np.random.Generator, size: int, grid) -> np.ndarray:
    yy, xx = grid
    level = size * rng.uniform(0.55, 0.8)
    swell = size * rng.uniform(0.02, 0.06) * np.sin(
        2 * np.pi * xx / (size * rng.uniform(0.5, 1.5)) + rng.uniform(0, 2 * np.pi))
    return yy > level + swell


def render_sample(index: int, split: str = 'train', size: int = 128, seed: int = 0) -> Sample:
    """Render image ``index`` of ``split``; the same arguments always give the same arrays."""
    rng = sample_rng(seed, split, index)
    grid = tuple(g.astype(np.float32) for g in np.mgrid[0:size, 0:size])
    # (class id, full mask) in drawing order; stuff classes appear at most once each.
    regions: List[Tuple[int, np.ndarray]] = [(0, np.ones((size, size), dtype=bool))]
    if rng.random() < 0.5:
        regions.append((1, _water_mask(rng, size, grid)))
    owner = np.zeros((size, size), dtype=np.int32)  # index into regions of the visible region
    owner[regions[-1][1]] = len(regions) - 1
    for _ in range(int(rng.integers(_INSTANCE_RANGE[0], _INSTANCE_RANGE[1] + 1))):
        class_id = int(rng.integers(len(STUFF_CLASSES), len(CLASSES)))
        for _ in range(_PLACEMENT_TRIES):
            mask = _shape_mask(CLASSES[class_id], rng, size)
            if mask.any() and all(
                    ((owner == j) & ~mask).sum() >= _MIN_VISIBLE * m.sum()
                    for j, (c, m) in enumerate(regions) if CLASSES[c] in THING_CLASSES):
                owner[mask] = len(regions)
                regions.append((class_id, mask))
                break

    # Composited through 2-D maps and per-region colour tables: masking (H, W, 3) arrays once
    # per region costs more than rendering the textures themselves.
    texture = np.empty((size, size), dtype=np.float32)
    colours = np.empty((2, len(regions), 3), dtype=np.float32)
    for i, (class_id, mask) in enumerate(regions):
        name = CLASSES[class_id]
        np.copyto(texture, _TEXTURES[name](rng, grid, size), where=mask)
        colours[:, i] = _colour_pair(rng, contrast=0.4 if name in STUFF_CLASSES else 1.0)
    low, high = colours[0][owner], colours[1][owner]
    image = low + texture[..., None] * (high - low)
    image += 6 * rng.standard_normal(size=image.shape, dtype=np.float32)

    classes = np.array([c for c, _ in regions], dtype=np.uint8)
    semantic = classes[owner]
    panoptic = np.zeros((size, size), dtype=np.int32)
    counts = [0] * len(CLASSES)
    segments_info = []
    for i, class_id in enumerate(classes.tolist()):
        visible = owner == i
        area = int(visible.sum())
        if area == 0:  # e.g. the background, when water and shapes cover all of it
            continue
        counts[class_id] += 1
        seg_id = class_id * OFFSET + counts[class_id]
        panoptic[visible] = seg_id
        ys, xs = np.nonzero(visible)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1)]
        segments_info.append(
            dict(id=seg_id, category_id=class_id, iscrowd=0, bbox=bbox, area=area))
    return Sample(np.clip(np.rint(image), 0, 255).astype(np.uint8), semantic, panoptic,
                  segments_info)


def _is_complete(root: Path, params: dict) -> bool:
    try:
        meta = json.loads((root / 'meta.json').read_text())
    except (OSError, ValueError):
        return False
    if meta != params:
        return False
    for split in SPLITS:
        expected = params[f'num_{split}']
        for folder in _FOLDERS:
            path = root / folder / split
            if not path.is_dir() or len(os.listdir(path)) != expected:
                return False
        if not (root / f'panoptic_{split}.json').is_file():
            return False
    return True


def _save_png(array: np.ndarray, path: Path) -> None:
    # Level 1: the pixel noise makes images nearly incompressible, so higher levels only cost time.
    Image.fromarray(array).save(path, format='PNG', compress_level=1)


def generate_shapes_dataset(root: Union[str, os.PathLike], num_train: int = 600,
                            num_val: int = 100, size: int = 128, seed: int = 0,
                            force: bool = False) -> bool:
    """Write the Shapes dataset under ``root`` in MMSegmentation's layout.

    Writes ``img_dir/{train,val}/NNNNN.png`` (RGB), ``ann_dir/{train,val}/NNNNN.png`` (uint8 class
    ids, no ignore pixels), ``panoptic/{train,val}/NNNNN.png`` with ``panoptic_{train,val}.json``
    (COCO panoptic) and ``meta.json`` with the parameters. Image ``i`` of a split depends only on
    ``(seed, split, i, size)``, and equal arguments give byte-identical files.

    Returns False, touching nothing, when ``root`` already holds a complete dataset made with the
    same parameters and generator version (unless ``force``); otherwise replaces what the
    generator owns under ``root`` and returns True.
    """
    if num_train < 0 or num_val < 0:
        raise ValueError(f'split sizes must be >= 0, got {num_train} and {num_val}')
    if size < 16:
        raise ValueError(f'size must be at least 16 pixels, got {size}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    root = Path(root)
    params = dict(version=VERSION, num_train=num_train, num_val=num_val, size=size, seed=seed)
    if not force and _is_complete(root, params):
        return False

    # meta.json goes first and last: a run that dies halfway leaves no meta.json and is redone.
    (root / 'meta.json').unlink(missing_ok=True)
    for split in SPLITS:
        (root / f'panoptic_{split}.json').unlink(missing_ok=True)
    for folder in _FOLDERS:
        shutil.rmtree(root / folder, ignore_errors=True)

    for split in SPLITS:
        dirs = [root / folder / split for folder in _FOLDERS]
        for d in dirs:
            d.mkdir(parents=True)
        images, annotations = [], []
        for index in range(params[f'num_{split}']):
            sample = render_sample(index, split, size, seed)
            name = f'{index:05d}.png'
            _save_png(sample.image, dirs[0] / name)
            _save_png(sample.semantic, dirs[1] / name)
            _save_png(id2rgb(sample.panoptic), dirs[2] / name)
            images.append(dict(id=index, file_name=name, width=size, height=size))
            annotations.append(
                dict(image_id=index, file_name=name, segments_info=sample.segments_info))
        coco = dict(images=images, annotations=annotations, categories=list(CATEGORIES))
        (root / f'panoptic_{split}.json').write_text(json.dumps(coco))
    (root / 'meta.json').write_text(json.dumps(params, indent=2) + '\n')
    return True
