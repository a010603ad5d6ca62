"""A grid of image panels with titles, composed with NumPy/OpenCV (no figure, milliseconds).

:func:`grid_layout` computes where every panel goes and :func:`compose_grid` pastes them, so
callers (and tests) know each panel's box in the final image. Panels are separated by gutters
of one colour (``GUTTER_RGB``); titles sit in a header band above each row.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

GUTTER_RGB = (72, 72, 72)
TEXT_RGB = (255, 255, 255)
_FONT_SCALE = 0.4
_LINE_HEIGHT = 14  # pixels per title line at _FONT_SCALE


def grid_layout(col_widths: Sequence[int],
                row_heights: Sequence[int],
                gutter: int = 4,
                title_lines: int = 1,
                top_lines: int = 0) -> Dict:
    """Boxes of a grid of panels with gutters, a title band above each row and a top band.

    Args:
        col_widths (Sequence[int]): Width of each column's panels (C,).
        row_heights (Sequence[int]): Height of each row's panels (R,).
        gutter (int): Pixels between panels and around the grid.
        title_lines (int): Text lines of the title band above each row (0: none).
        top_lines (int): Text lines of a band at the very top (e.g. a caption).

    Returns:
        dict: ``width``, ``height`` of the image; ``boxes`` (R, C, 4) int ``[x0, y0, x1, y1]``
        of each panel (exclusive ends); ``title_boxes`` (R, C, 4) of the title bands;
        ``top_box`` (4,) of the top band (height 0 when ``top_lines`` is 0).
    """
    if not col_widths or not row_heights:
        raise ValueError('a grid needs at least one column and one row')
    title_h = title_lines * _LINE_HEIGHT
    top_h = top_lines * _LINE_HEIGHT
    xs = np.cumsum([gutter] + [w + gutter for w in col_widths])[:-1]
    boxes = np.zeros((len(row_heights), len(col_widths), 4), np.int64)
    titles = np.zeros_like(boxes)
    y = gutter + top_h + (gutter if top_h else 0)
    for r, height in enumerate(row_heights):
        for c, (x, width) in enumerate(zip(xs, col_widths)):
            titles[r, c] = (x, y, x + width, y + title_h)
            boxes[r, c] = (x, y + title_h, x + width, y + title_h + height)
        y += title_h + height + gutter
    width = int(xs[-1] + col_widths[-1] + gutter)
    return dict(width=width, height=int(y), boxes=boxes, title_boxes=titles,
                top_box=np.array([gutter, gutter, width - gutter, gutter + top_h]))


def put_text(image: np.ndarray, lines: Sequence[str], box: Sequence[int],
             color: Sequence[int] = TEXT_RGB) -> None:
    """Write ``lines`` into ``box`` ``[x0, y0, x1, y1]`` of ``image`` (in place), one per line.

    Text that does not fit is clipped by the box (never drawn over a neighbouring panel).
    """
    import cv2
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        return
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    for i, line in enumerate(lines):
        cv2.putText(region, str(line), (2, (i + 1) * _LINE_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    _FONT_SCALE, tuple(int(c) for c in color), 1, cv2.LINE_AA)
    image[y0:y1, x0:x1] = region


def compose_grid(panels: Sequence[Sequence[Optional[np.ndarray]]],
                 layout: Dict,
                 titles: Optional[Sequence[Sequence[Sequence[str]]]] = None,
                 top: Sequence[str] = ()) -> np.ndarray:
    """Paste panels into the boxes of ``layout`` on a gutter-coloured canvas.

    Args:
        panels: ``panels[r][c]`` uint8 RGB ``(h, w, 3)`` of exactly its box's size, or None
            (left as gutter).
        layout (dict): From :func:`grid_layout`.
        titles: ``titles[r][c]`` lines of text for the title band of each panel.
        top (Sequence[str]): Lines of the top band.

    Returns:
        np.ndarray: ``(height, width, 3)`` uint8 RGB.
    """
    canvas = np.empty((layout['height'], layout['width'], 3), np.uint8)
    canvas[:] = np.asarray(GUTTER_RGB, np.uint8)
    boxes = layout['boxes']
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            if panel is None:
                continue
            x0, y0, x1, y1 = boxes[r, c]
            if panel.shape[:2] != (y1 - y0, x1 - x0):
                raise ValueError(f'panel ({r}, {c}) has shape {panel.shape[:2]}, its box is '
                                 f'{(y1 - y0, x1 - x0)}')
            canvas[y0:y1, x0:x1] = panel
            if titles is not None and titles[r][c]:
                put_text(canvas, titles[r][c], layout['title_boxes'][r, c])
    if top:
        put_text(canvas, top, layout['top_box'])
    return canvas


def gutter_mask(image: np.ndarray) -> np.ndarray:
    """Bool ``(H, W)``: pixels that have exactly the gutter colour (to find panel separators)."""
    return (image == np.asarray(GUTTER_RGB, np.uint8)).all(axis=-1)


def count_panels(image: np.ndarray, min_size: int = 48) -> List[int]:
    """Panels per row of a composed grid, found from the image alone (for tests).

    Rows of pixels that are gutter from left to right separate bands; within a band, the
    panels are the runs of columns that are not gutter from top to bottom. Bands and runs
    smaller than ``min_size`` pixels (title or caption text alone) are ignored.

    Returns:
        list[int]: Number of panels in each row of panels, top to bottom.
    """
    gutter = gutter_mask(image)
    counts = []
    for start, stop in _runs(~gutter.all(axis=1)):
        if stop - start < min_size:
            continue
        runs = _runs(~gutter[start:stop].all(axis=0))
        counts.append(sum(1 for a, b in runs if b - a >= min_size))
    return counts


def _runs(flags: np.ndarray) -> List[tuple]:
    """``(start, stop)`` of every run of True in a 1D bool array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))
