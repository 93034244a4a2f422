"""A PNG of what the X server shows, read with Xlib through ctypes: the picture a person would see.

Blender's own `screen.screenshot` reads OpenGL's framebuffer, which comes back black from Blender 5.x on
Mesa's llvmpipe under Xvfb (seen with Debian's 5.2.2) although the window is drawn. The X server's copy
is right on every Blender, so the GUI driver asks it instead. Needs only libX11 and zlib, which every
Blender with a window already loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import zlib

Z_PIXMAP = 2
ALL_PLANES = 0xFFFFFFFF


class _XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int),
                ("format", ctypes.c_int), ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int),
                ("depth", ctypes.c_int), ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int),
                ("red_mask", ctypes.c_ulong), ("green_mask", ctypes.c_ulong), ("blue_mask", ctypes.c_ulong)]


def _xlib() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XGetImage.restype = ctypes.POINTER(_XImage)
    lib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                              ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    lib.XDestroyImage.argtypes = [ctypes.POINTER(_XImage)]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return lib


def _png(width: int, height: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def grab(path: str, x: int, y: int, width: int, height: int, display: str | None = None) -> None:
    """Write the screen rectangle (x, y, width, height), top-left origin, as a PNG at `path`."""
    xlib = _xlib()
    dpy = xlib.XOpenDisplay((display or os.environ.get("DISPLAY", "")).encode())
    if not dpy:
        raise RuntimeError("cannot open the X display")
    try:
        image = xlib.XGetImage(dpy, xlib.XDefaultRootWindow(dpy), x, y, width, height, ALL_PLANES, Z_PIXMAP)
        if not image:
            raise RuntimeError("XGetImage failed")
        try:
            img = image.contents
            if img.bits_per_pixel != 32:
                raise RuntimeError(f"{img.bits_per_pixel} bits per pixel: only 24-bit screens are read")
            raw = ctypes.string_at(img.data, img.bytes_per_line * img.height)
            rows = bytearray()
            for row in range(img.height):
                line = raw[row * img.bytes_per_line: row * img.bytes_per_line + img.width * 4]
                rgb = bytearray(img.width * 3)
                rgb[0::3], rgb[1::3], rgb[2::3] = line[2::4], line[1::4], line[0::4]  # BGRX -> RGB
                rows += b"\x00" + rgb
            data = _png(img.width, img.height, bytes(rows))
        finally:
            xlib.XDestroyImage(image)
    finally:
        xlib.XCloseDisplay(dpy)
    with open(path, "wb") as fh:
        fh.write(data)
