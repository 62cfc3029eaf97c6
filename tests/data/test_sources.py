import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfposenc.data import DATASETS, DatasetNotFoundError, info, load, load_digits_arrays


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_digits_loader_offline(no_network):
    train = list(load("digits", "train"))
    test = list(load("digits", "test"))
    assert len(train) + len(test) == 1797
    assert (len(train), len(test)) == (
        info("digits").splits["train"],
        info("digits").splits["test"],
    )
    images = np.stack([x.numpy() for x, _ in train + test])
    labels = np.array([int(y) for _, y in train + test])
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 3)
    assert images.min() == 0 and images.max() == 255
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.all(images[..., 0] == images[..., 2])


def test_digits_normalisation_constants_match_data():
    images, _ = load_digits_arrays("train")
    x = images / 255.0
    np.testing.assert_allclose(info("digits").mean, x.mean(axis=(0, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(info("digits").std, x.std(axis=(0, 1, 2)), atol=1e-4)


def test_info_for_every_source():
    for name in DATASETS:
        meta = info(name)
        assert meta.num_classes in (10, 36, 100, 1000) and len(meta.mean) == 3
        assert not meta.class_names or len(meta.class_names) == meta.num_classes
    assert info("cifar10").mean == (0.4914, 0.4822, 0.4465)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_tfds_path_with_mock_data(name):
    with tfds.testing.mock_data(num_examples=6):
        examples = list(load(name, "train"))
    assert len(examples) == 6
    image, label = examples[0]
    assert image.dtype.name == "uint8" and tuple(image.shape) == (32, 32, 3)
    assert label.dtype.name == "int64" and 0 <= int(label) < info(name).num_classes


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012"])
def test_missing_data_fails_fast_with_instructions(name, tmp_path, no_network):
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as error:
        load(name, "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 20
    message = str(error.value)
    assert name in message and str(tmp_path) in message
    assert "tfds build" in message
    if name == "imagenet2012":
        assert "downloads/manual" in message


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: name='mnist'"):
        load("mnist")
    with pytest.raises(ValueError, match="Received: name='svhn'"):
        info("svhn")
    with pytest.raises(ValueError, match="Received: split='val'"):
        load("digits", "val")
