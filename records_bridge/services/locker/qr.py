"""QR codes of share links, drawn by segno (pure Python, no image library needed for SVG or PNG)."""

from __future__ import annotations

import io

import segno


def qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=6, border=4, dark="#000", light="#fff", xmldecl=False,
                                                  title="QR code of the share link")  # fmt: skip
    return out.getvalue()


def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=6, border=4)
    return out.getvalue()
