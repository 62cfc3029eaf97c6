import keras
import numpy as np
import pytest

from tfposenc.models import AugShift, Classifier, ResNetBackbone


def classifier():
    return Classifier(ResNetBackbone(18, stem="cifar", width=4), 3)


@pytest.mark.parametrize("crop_size", [12, (12, 11)])
def test_crop_views_are_windows_and_crop_size_round_trips(crop_size):
    model = AugShift(classifier(), 5, shift_mode="crop", crop_size=crop_size, seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    window = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    for view in model.make_views(x):
        view = keras.ops.convert_to_numpy(view)
        assert view.shape == (4, *window, 3)
        for image, cut in zip(x, view):  # a window of the image itself at [0, 5) offsets
            assert any(
                np.array_equal(cut, image[y : y + window[0], c : c + window[1]])
                for y in range(5)
                for c in range(5)
            )
    clone = AugShift.from_config(model.get_config())
    assert clone.crop_size == model.crop_size and clone.shift_mode == "crop"


def test_crop_size_needs_crop_mode_and_a_positive_size():
    with pytest.raises(ValueError, match="Received: crop_size=12 with shift_mode='symmetric'"):
        AugShift(classifier(), 4, crop_size=12)
    with pytest.raises(ValueError, match="crop_size"):
        AugShift(classifier(), 4, shift_mode="crop", crop_size=0)
