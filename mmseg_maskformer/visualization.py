"""Drawing label maps and panoptic segments as RGB pictures (numpy + Pillow only).

Shared by ``tools/visualize.py`` (panels of a test set) and ``tools/infer.py`` (overlays on
one's own images).
"""
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def colourise(label_map: np.ndarray, palette: np.ndarray,
              ignore_index: Optional[int] = None) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) RGB, class ``i`` in ``palette[i]``.

    ``ignore_index``: the "don't care" value of a ground-truth map (the dataset's: 255, 65 for
    Vistas, 65535 for ADE20K-Full), painted white, as are ids with no colour. Predictions have no
    such value: leave it ``None``, or a model with more than 255 classes loses class 255's colour.
    """
    rgb = np.full(label_map.shape + (3, ), 255, dtype=np.uint8)
    valid = (label_map >= 0) & (label_map < len(palette))
    if ignore_index is not None:
        valid &= label_map != ignore_index
    rgb[valid] = palette[label_map[valid]]
    return rgb


def segment_borders(segment_map: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose upper or left neighbour belongs to another segment."""
    border = np.zeros(segment_map.shape, dtype=bool)
    border[1:] |= segment_map[1:] != segment_map[:-1]
    border[:, 1:] |= segment_map[:, 1:] != segment_map[:, :-1]
    return border


def colourise_segments(segment_map: np.ndarray, labels: Dict[int, int],
                       palette: np.ndarray) -> np.ndarray:
    """(H, W) segment ids -> RGB: the class colour, shaded per instance; void black; segment
    borders white."""
    rgb = np.zeros(segment_map.shape + (3, ), dtype=np.uint8)
    seen = {}
    for segment_id, label in labels.items():
        shade = 1.0 - 0.25 * (seen.get(label, 0) % 3)
        seen[label] = seen.get(label, 0) + 1
        rgb[segment_map == segment_id] = (palette[label] * shade).astype(np.uint8)
    rgb[segment_borders(segment_map)] = 255
    return rgb


def blend(image: np.ndarray, colours: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """``(1 - opacity)·image + opacity·colours`` for two (H, W, 3) uint8 RGB arrays."""
    mixed = (1.0 - opacity) * image.astype(np.float32) + opacity * colours.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def add_legend(image: np.ndarray, entries: Iterable[Tuple[str, Sequence[int]]]) -> Image.Image:
    """The picture with a white column on its right listing ``(name, RGB colour)`` entries as
    colour swatches and names (the canvas grows downwards when the list is taller)."""
    entries = list(entries)
    font = ImageFont.load_default()
    line, swatch, margin = 14, 10, 4
    width = max([int(font.getlength(name)) for name, _ in entries] + [0]) + swatch + 3 * margin
    height = max(image.shape[0], len(entries) * line + 2 * margin)
    canvas = Image.new('RGB', (image.shape[1] + width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(canvas)
    left = image.shape[1] + margin
    for row, (name, colour) in enumerate(entries):
        top = margin + row * line
        draw.rectangle([left, top + 1, left + swatch, top + 1 + swatch],
                       fill=tuple(int(c) for c in colour), outline=(0, 0, 0))
        draw.text((left + swatch + margin, top), name, fill=(0, 0, 0), font=font)
    return canvas


def panel(columns: Sequence[np.ndarray], scale: int) -> Image.Image:
    """(H, W, 3) pictures side by side, 4 white pixels apart, zoomed ``scale`` times."""
    gap = np.full((columns[0].shape[0], 4, 3), 255, dtype=np.uint8)
    row = np.concatenate([c for col in columns for c in (col, gap)][:-1], axis=1)
    image = Image.fromarray(row)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)
