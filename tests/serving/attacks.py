"""Hostile-input helpers for the serving tests (test_hardening.py, test_budgets.py): an
any-size model served beside "tiny", hand-built PNGs, and raw bytes over a socket."""

import os
import socket
import struct
import time
import zlib

import tensorflow as tf

from tests.serving.savedmodels import save, write_version


class AnySize(tf.Module):
    """Mean pixel of uint8 images of any size: an input without static height/width;
    signature "ints" adds one to int64 pairs."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve(self, images):
        return {"mean": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3])}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int64, name="i")])
    def ints(self, i):
        return {"j": i + 1}


def png_bytes(width, height, idat, colour_type=2):
    """A PNG of 8-bit `colour_type` declaring `width` x `height` around the IDAT `idat`."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def png_declaring(width, height):
    """A PNG whose header declares `width` x `height`, with 64 KB of compressed zero rows."""
    return png_bytes(width, height, zlib.compress(b"\x00" * (8 << 20), 9)[: 64 << 10])


def tiny_and_any(root):
    """Writes the fixed-size "tiny" and the any-size "any" models under `root` and the
    model config file that serves both; returns the config's path."""
    write_version(str(root / "tiny"), 0)
    os.makedirs(root / "any")
    module = AnySize()
    save(module, str(root / "any" / "1"), {"serving_default": module.serve, "ints": module.ints})
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "tiny" base_path: "{root / "tiny"}" }}\n'
        f'  config {{ name: "any" base_path: "{root / "any"}" }}\n'
        "}\n"
    )
    return config


def raw_exchange(port, data, shutdown=False, timeout=5.0):
    """Sends raw bytes; returns everything the server sends until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                part = s.recv(65536)
            except TimeoutError:
                return received, False
            if not part:
                return received, True
            received += part
        return received, False
