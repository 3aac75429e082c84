"""The simulator camera: frames that carry the bed id and the wall-clock time they were made, readable back.

Each frame shows three lines of large dark glyphs on a white panel, drawn with
a 5x7 bitmap font of our own (0-9, A-Z and '-'):

* the bed id (upper-cased; at most ``COLUMNS`` characters, left-aligned),
* the frame's creation time in milliseconds since the epoch, 13 digits,
* two check characters (CRC-32 of the two lines above, in base 37),

and below them a dark block that sweeps across the picture once every 2 s, so
the picture visibly moves. One font cell is ``cell`` pixels square, the largest
that fits (8 px at 640x480), so the glyphs survive VP8 compression at
500 kbps. ``read_back`` samples the middle of every cell, matches each glyph to
the nearest template and checks the check characters: it returns exactly what
``render`` drew, or raises ``PatternUnreadable``.
"""

from __future__ import annotations

import asyncio
import fractions
import time
import zlib
from functools import lru_cache

import numpy as np
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from av import VideoFrame

COLUMNS = 13  # characters per line: 13 digits hold a millisecond time until the year 2286
ROWS = 3  # bed, time, check
GLYPH_W, GLYPH_H = 5, 7
ADVANCE = GLYPH_W + 1  # a blank font column between characters
LINE_PITCH = GLYPH_H + 2
MIN_CELL = 4  # smaller glyphs would not survive compression
MAX_T_MS = 10**COLUMNS - 1
SWEEP_MS = 2000

_FONT_ROWS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("####.", "....#", "....#", ".###.", "....#", "....#", "####."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "A": ("..#..", ".#.#.", "#...#", "#...#", "#####", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    " ": (".....",) * 7,
}
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"  # what a bed id may hold; the check characters use it too
_CHARS = ALPHABET + " "
_TEMPLATES = np.array([[[c == "#" for c in row] for row in _FONT_ROWS[ch]] for ch in _CHARS], dtype=np.float32)
_FLAT = _TEMPLATES.reshape(len(_CHARS), -1)  # (38, 35): 1 = ink
MAX_CELL_RMS = 0.3  # a glyph further than this from its nearest template (0 = exact, 1 = inverted) is unreadable


class PatternUnreadable(ValueError):
    """The frame does not carry a readable test pattern: wrong shape, too small, glyphs unclear or the check fails."""


def cell_size(width: int, height: int) -> int:
    """The font cell's side in pixels for a frame of this size (0 if none fits)."""
    return min(width // (COLUMNS * ADVANCE + 2), height // (ROWS * LINE_PITCH + 6))


def _check(bed: str, digits: str) -> str:
    crc = zlib.crc32(f"{bed}|{digits}".encode())
    return ALPHABET[crc % 37] + ALPHABET[(crc // 37) % 37]


def printable_bed(bed: str) -> str:
    """The bed id as the pattern shows it: upper case, characters outside the font as '-', at most ``COLUMNS``."""
    return "".join(ch if ch in ALPHABET else "-" for ch in bed.upper()[:COLUMNS])


@lru_cache(maxsize=8)
def _glyph_images(cell: int) -> np.ndarray:
    """Every glyph scaled up to ``cell`` pixels a font cell: (38, 7*cell, 5*cell) of 0 (ink) or 255 (paper)."""
    big = _TEMPLATES.repeat(cell, axis=1).repeat(cell, axis=2)
    return np.where(big > 0, 0, 255).astype(np.uint8)


def _origin(cell: int, row: int, col: int) -> tuple[int, int]:
    return cell * (1 + row * LINE_PITCH), cell * (1 + col * ADVANCE)


def render(bed: str, t_ms: int, width: int, height: int) -> np.ndarray:
    """A (height, width, 3) RGB frame showing ``bed`` and ``t_ms``; ``ValueError`` if either cannot be shown."""
    cell = cell_size(width, height)
    if cell < MIN_CELL:
        raise ValueError(f"{width}x{height} is too small for the test pattern")
    if not 0 <= t_ms <= MAX_T_MS:
        raise ValueError(f"t_ms {t_ms} is outside 0..{MAX_T_MS}")
    if len(bed) > COLUMNS or any(ch not in ALPHABET for ch in bed):
        raise ValueError(f"bed {bed!r}: at most {COLUMNS} of {ALPHABET!r} (see printable_bed)")
    digits = f"{t_ms:0{COLUMNS}d}"
    lines = (bed.ljust(COLUMNS), digits, _check(bed, digits).ljust(COLUMNS))
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    glyphs = _glyph_images(cell)
    gh, gw = glyphs.shape[1:]
    for row, text in enumerate(lines):
        for col, ch in enumerate(text):
            if ch != " ":
                y, x = _origin(cell, row, col)
                frame[y : y + gh, x : x + gw] = glyphs[_CHARS.index(ch)][:, :, None]
    # the moving part: a dark blue block sweeping along the bottom band, below the text
    band_top = cell * (1 + ROWS * LINE_PITCH + 1)
    block = max(cell * 4, 8)
    if height - band_top >= block:
        x = (t_ms % SWEEP_MS) * max(width - block, 1) // SWEEP_MS
        frame[band_top : band_top + block, x : x + block] = (20, 40, 160)
    return frame


def read_back(frame: np.ndarray) -> tuple[str, int]:
    """(bed, t_ms) from a frame ``render`` drew, after any compression that keeps the glyphs legible.

    ``frame`` is (H, W, 3) RGB, uint8. Raises ``PatternUnreadable`` for anything else: a wrong shape or type, a
    frame too small, a glyph not close to any template, a time that is not digits, or check characters that
    do not match."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise PatternUnreadable("not an (H, W, 3) uint8 RGB frame")
    height, width = frame.shape[:2]
    cell = cell_size(width, height)
    if cell < MIN_CELL:
        raise PatternUnreadable(f"{width}x{height} is too small to carry the test pattern")
    luma = frame[..., 0] * np.float32(0.299 / 255) + frame[..., 1] * np.float32(0.587 / 255) + frame[..., 2] * np.float32(0.114 / 255)
    inner = max(cell // 2, 1)  # average the middle of each cell, away from the edges compression blurs
    pad = (cell - inner) // 2
    lines = []
    for row in range(ROWS):
        y0, x0 = _origin(cell, row, 0)
        band = luma[y0 : y0 + GLYPH_H * cell, x0 : x0 + COLUMNS * ADVANCE * cell]
        cells = band.reshape(GLYPH_H, cell, COLUMNS * ADVANCE, cell)[:, pad : pad + inner, :, pad : pad + inner].mean(axis=(1, 3))
        ink = 1.0 - cells  # (7, 78): 1 = ink
        text = []
        for col in range(COLUMNS):
            sample = ink[:, col * ADVANCE : col * ADVANCE + GLYPH_W].reshape(-1)
            dist = np.sqrt(((_FLAT - sample) ** 2).mean(axis=1))
            best = int(dist.argmin())
            if dist[best] > MAX_CELL_RMS:
                raise PatternUnreadable(f"line {row + 1}, character {col + 1}: no glyph is close (distance {dist[best]:.2f})")
            text.append(_CHARS[best])
        lines.append("".join(text))
    bed, digits, check = lines[0].rstrip(), lines[1], lines[2].rstrip()
    if not digits.isdigit() or " " in bed:
        raise PatternUnreadable(f"not a bed and a time: {bed!r} {digits!r}")
    if check != _check(bed, digits):
        raise PatternUnreadable(f"check characters {check!r} do not match {bed!r} {digits!r}")
    return bed, int(digits)


class TestPatternTrack(VideoStreamTrack):
    """A simulated bedside camera: ``fps`` frames a second of ``render(bed, now)``, each stamped when it is made."""

    __test__ = False  # not a pytest test class

    def __init__(self, bed: str, width: int = 640, height: int = 480, fps: int = 15) -> None:
        super().__init__()
        self.bed = printable_bed(bed)
        self.width, self.height = width, height
        self.clock_rate = 90_000
        self.ptime = 1 / fps
        render(self.bed, 0, width, height)  # a size or bed it cannot draw fails here, not in the sender
        self.frames = 0
        self._start: float | None = None
        self._pts = 0

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Pace frames at ``fps`` against the loop's clock, as ``VideoStreamTrack`` does at its fixed 30 fps."""
        if self.readyState != "live":
            raise MediaStreamError
        step = int(self.ptime * self.clock_rate)
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += step
            wait = self._start + self._pts / self.clock_rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        return self._pts, fractions.Fraction(1, self.clock_rate)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        if self.readyState != "live":
            raise MediaStreamError
        frame = VideoFrame.from_ndarray(render(self.bed, int(time.time() * 1000), self.width, self.height), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame
