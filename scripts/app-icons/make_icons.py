#!/usr/bin/env python3
"""Draws the phone app's home-screen icons (192 and 512 px PNG) into
crates/web/static/app/. Run once after changing the drawing; the PNGs are committed.

The icon is the brand mark of the pages' stylesheet (`.brand::before`): a keyhole, white on
Latchkey blue, drawn inside the central 80% so that launchers which crop icons to a circle
("maskable") keep all of it. Pure standard library (zlib), so nothing needs installing.
"""
import os
import struct
import zlib

BLUE = (0x1F, 0x5F, 0xBF)
WHITE = (0xFF, 0xFF, 0xFF)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "web", "static", "app")


def keyhole(x, y):
    """Whether (x, y), in units of the icon's side (0..1), is on the white keyhole."""
    # The round head of the keyhole.
    if (x - 0.5) ** 2 + (y - 0.42) ** 2 <= 0.11 ** 2:
        return True
    # Its stem, widening slightly downwards.
    if 0.42 <= y <= 0.70:
        half = 0.045 + (y - 0.42) * 0.12
        return abs(x - 0.5) <= half
    return False


def pixel(size, px, py):
    # 4x4 supersampling for smooth edges.
    hits = 0
    for sy in range(4):
        for sx in range(4):
            if keyhole((px + (sx + 0.5) / 4) / size, (py + (sy + 0.5) / 4) / size):
                hits += 1
    a = hits / 16
    return tuple(round(b * (1 - a) + w * a) for b, w in zip(BLUE, WHITE))


def png(size):
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # filter: none
        for px in range(size):
            rows.extend(pixel(size, px, py))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    for size in (192, 512):
        path = os.path.join(OUT, f"icon-{size}.png")
        with open(path, "wb") as f:
            f.write(png(size))
        print(path)
