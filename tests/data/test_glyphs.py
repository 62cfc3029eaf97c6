import os
import socket

import numpy as np
import pytest

from tfposenc.data import info, load, load_glyph_arrays
from tfposenc.data.glyphs import (
    CLASSES,
    FONTS,
    draw_glyph,
    font_path,
    noise_backgrounds,
    render_glyphs,
    textured_glyphs,
)


def test_deterministic_by_seed():
    first, labels = render_glyphs(3, 12, seed=5)
    again, same_labels = render_glyphs.__wrapped__(3, 12, seed=5)  # not the cached copy
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(labels, same_labels)
    other, other_labels = render_glyphs.__wrapped__(3, 12, seed=6)
    assert not np.array_equal(first, other) and not np.array_equal(labels, other_labels)
    np.testing.assert_array_equal(
        textured_glyphs(1, 24, 12, seed=5)[0], textured_glyphs.__wrapped__(1, 24, 12, seed=5)[0]
    )


@pytest.mark.parametrize("name", ["glyphs", "textured_glyphs"])
def test_splits_are_balanced_and_match_info(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    meta = info(name)
    assert meta.num_classes == len(meta.class_names) == 36 and meta.source == "generated"
    for split, count in meta.splits.items():
        images, labels = load_glyph_arrays(name, split)
        assert images.dtype == np.uint8 and images.shape == (count, *meta.image_size, 3)
        assert np.bincount(labels, minlength=36).tolist() == [count // 36] * 36
        assert np.all(images[..., 0] == images[..., 2])
    train = list(load(name, "train").take(3))
    assert train[0][0].dtype.name == "uint8" and train[0][1].dtype.name == "int64"
    x = load_glyph_arrays(name, "train")[0] / 255.0
    np.testing.assert_allclose(meta.mean, x.mean(axis=(0, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(meta.std, x.std(axis=(0, 1, 2)), atol=1e-4)
    assert not np.array_equal(load_glyph_arrays(name, "test")[0][:5], x[:5])


def test_one_glyph_per_class_is_drawn_and_classes_differ():
    for font in FONTS:  # every font draws every class: a missing glyph would be blank
        drawn = np.stack([draw_glyph(c, font, 16) for c in CLASSES])
        assert drawn.max(axis=(1, 2)).min() > 0.5, font
        ink = (drawn > 0.5).sum(axis=(1, 2))
        assert ink.min() >= 6, (font, CLASSES[int(ink.argmin())])
        flat = drawn.reshape(len(CLASSES), -1)
        distance = np.abs(flat[:, None] - flat[None]).sum(-1)
        np.fill_diagonal(distance, np.inf)
        assert distance.min() > 1.0, font  # no two classes render alike


def test_random_rotation_scale_and_stroke_change_the_glyph():
    base = draw_glyph("R", FONTS[0], 16)
    rotated = draw_glyph("R", FONTS[0], 16, rotation=90)
    np.testing.assert_allclose(np.rot90(base), rotated, atol=0.35)  # 90 deg ccw = rot90
    assert draw_glyph("R", FONTS[0], 16, scale=0.5).sum() < base.sum()
    assert draw_glyph("R", FONTS[0], 16, stroke=3).sum() > base.sum()


def test_fonts_ship_with_matplotlib_and_their_licences():
    for font in FONTS:
        assert os.path.exists(font_path(font)), font
    for licence in ("LICENSE_DEJAVU", "LICENSE_STIX"):
        assert os.path.exists(font_path(licence))


def test_noise_has_a_one_over_f_spectrum():
    noise = noise_backgrounds(64, 64, seed=0)
    assert noise.shape == (64, 64, 64) and noise.min() == 0.0 and noise.max() == 1.0
    power = (np.abs(np.fft.fft2(noise - noise.mean(axis=(1, 2), keepdims=True))) ** 2).mean(0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij"))
    keep = (f > 0.03) & (f < 0.4)
    slope = np.polyfit(np.log(f[keep]), np.log(power[keep]), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.25)  # power 1/f^2, amplitude 1/f


def test_textured_glyphs_have_texture_to_the_edges_and_a_white_glyph():
    images, labels = textured_glyphs(1, 40, 16, seed=0)
    assert images.shape == (36, 40, 40)
    for strip in (images[:, :6], images[:, -6:], images[:, :, :6], images[:, :, -6:]):
        assert strip.std(axis=(1, 2)).min() > 0.01  # no uniform (black) band at the edges
    # Backgrounds stay below 0.7; every glyph has ink above that, near the centre.
    assert images[:, 12:28, 12:28].max(axis=(1, 2)).min() > 0.8
    assert images.max() <= 1.0 and images.min() >= 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: per_class=0"):
        render_glyphs(0)
    with pytest.raises(ValueError, match="Received: seed=-1"):
        render_glyphs(1, 16, -1)
    with pytest.raises(ValueError, match="Received: glyph_size=48"):
        textured_glyphs(1, 48, 48)
    with pytest.raises(ValueError, match="Received: split='val'"):
        load("glyphs", "val")
    with pytest.raises(ValueError, match="Received: name='digits'"):
        load_glyph_arrays("digits")
