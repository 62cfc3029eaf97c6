import numpy as np
import pytest
import tensorflow as tf

from tfposenc.data import centre_crop, load, load_digits_arrays, on_black_canvas


def test_native_digits_on_a_black_canvas_equal_np_pad():
    images, labels = load_digits_arrays("test")
    fit = on_black_canvas(8, 32)
    eager, label = fit(tf.constant(images[0]), labels[0])
    np.testing.assert_array_equal(eager, np.pad(images[0], ((12, 12), (12, 12), (0, 0))))
    assert label == labels[0] and eager.dtype == tf.float32
    mapped = next(iter(load("digits", "test").map(fit).batch(4)))[0].numpy()
    for image, canvas in zip(images[:4], mapped):
        np.testing.assert_array_equal(canvas, np.pad(image, ((12, 12), (12, 12), (0, 0))))


def test_resized_content_is_centred_with_a_black_margin():
    image = np.full((8, 8, 3), 200, "uint8")
    canvas = on_black_canvas(16, 32)(tf.constant(image), 0)[0].numpy()
    assert canvas.shape == (32, 32, 3)
    np.testing.assert_array_equal(canvas[8:24, 8:24], 200.0)  # a flat image stays flat
    canvas[8:24, 8:24] = 0
    assert not canvas.any()  # black everywhere else


def test_centre_crop_is_the_middle_window():
    image = np.arange(48 * 48 * 3, dtype="float32").reshape(48, 48, 3)
    cut, _ = centre_crop(32)(tf.constant(image), 0)
    np.testing.assert_array_equal(cut, image[8:40, 8:40])
    odd, _ = centre_crop(33)(tf.constant(image), 0)
    np.testing.assert_array_equal(odd, image[7:40, 7:40])


@pytest.mark.parametrize("downsampling", ["aps", "stride"])
def test_aps_is_exact_on_black_margin_digits(downsampling):
    # The exactness check of the shift-invariance table: with a margin wider than the
    # shift, Cons.8's black-fill shifts are circular shifts, and APS (circular padding)
    # is exactly invariant to those, trained or not: both must read exactly 100.0.
    # The read-out is the channel of the pooled features most above its mean over the
    # images, so untrained predictions vary between images (a constant one would score
    # 100 for any network); strided convolutions with zero padding are the control.
    import keras

    from tfposenc.metrics import shift_agreement
    from tfposenc.models import Classifier, ResNetBackbone

    keras.utils.set_random_seed(0)
    aps = downsampling == "aps"
    backbone = ResNetBackbone(
        18,
        stem="cifar",
        width=4,
        padding_mode="circular" if aps else "zero",
        downsampling=downsampling,
    )
    model = Classifier(backbone, 10, mean=[0.3] * 3, std=[0.37] * 3)
    for content in (16, 8):
        data = load("digits", "test").take(48).map(on_black_canvas(content, 32)).batch(48)
        centre = model.pooled_features(next(iter(data))[0]).numpy().mean(axis=0)

        def readout(images, training=False, centre=centre):
            return model.pooled_features(images) - centre

        top1 = np.argmax(readout(next(iter(data))[0]).numpy(), axis=-1)
        assert len(set(top1.tolist())) >= 8  # predictions differ between images
        cons8 = shift_agreement(readout, data, 8, "centred", passes=2)
        circular = shift_agreement(readout, data, 32, "circular", passes=2)
        if aps:
            assert cons8 == 100.0 and circular == 100.0, content
        else:
            assert cons8 < 90.0 and circular < 90.0, content


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: content_size=40"):
        on_black_canvas(40, 32)
    with pytest.raises(ValueError, match="Received: size=0"):
        centre_crop(0)
