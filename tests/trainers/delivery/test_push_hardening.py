"""What a push refuses before copying (issue "Under load and bad input", E10, E11, E14):
symbolic links, special and sparse files, exports over the size cap, `assets.extra/`
without its warm-up file, a `fingerprint.pb` that is not the SavedModel's; and a refused
push's reason kept whole on one line."""

import os
import shutil

import keras
import pytest
import tensorflow as tf

from tfposenc.export import export_saved_model
from trainers.delivery import push, store

EVAL = dict(eval_data="digits", grid_size=2, task="location", eval_examples=2)


def dense_model():
    inputs = keras.Input((16, 16, 3))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    return export_saved_model(dense_model(), str(tmp_path_factory.mktemp("e") / "m"), 1, (16, 16))


def candidate(export, tmp_path):
    path = tmp_path / "candidate" / "1"
    shutil.copytree(export, path)
    return path


def refused(path, tmp_path, **kwargs):
    base = tmp_path / "served"
    result = push.push(str(path), str(base), log=None, **EVAL, **kwargs)
    assert not result["pushed"]
    assert sorted(os.listdir(base)) == [], os.listdir(base)  # nothing copied, no lock even
    (check,) = result["checks"]
    assert check["check"] == "export" and not check["passed"]
    return check["message"]


def test_a_symbolic_link_is_refused_before_copying(export, tmp_path):
    path = candidate(export, tmp_path)
    os.makedirs(path / "assets", exist_ok=True)
    outside = tmp_path / "outside.txt"  # /dev/zero in the attack: 9.65 GB copied in 25 s
    outside.write_bytes(b"x" * 1000)
    os.symlink(outside, path / "assets" / "vocabulary.txt")
    message = refused(path, tmp_path)
    assert f"assets/vocabulary.txt is a symbolic link (to '{outside}')" in message


def test_a_large_sparse_asset_is_refused(export, tmp_path):
    path = candidate(export, tmp_path)
    os.makedirs(path / "assets", exist_ok=True)
    with open(path / "assets" / "table.bin", "wb") as f:
        f.truncate(64 << 20)  # 64 MB of hole, no blocks
    assert "assets/table.bin is a sparse file (67108864 bytes" in refused(path, tmp_path)


def test_an_export_over_the_size_cap_is_refused(export, tmp_path):
    message = refused(candidate(export, tmp_path), tmp_path, max_export_bytes=1000)
    assert "above the push limit of 1000" in message


def test_a_missing_warmup_file_is_refused_where_the_export_declares_it(export, tmp_path):
    path = candidate(export, tmp_path)
    os.remove(path / store.WARMUP_FILE)  # assets.extra/ stays
    assert "tf_serving_warmup_requests is missing" in refused(path, tmp_path)


@pytest.mark.parametrize("garbage", [b"\xff" * 64, b""], ids=["corrupt", "empty"])
def test_a_garbage_fingerprint_is_refused(export, tmp_path, garbage):
    path = candidate(export, tmp_path)
    (path / "fingerprint.pb").write_bytes(garbage)
    assert "fingerprint.pb" in refused(path, tmp_path)


def test_copy_export_copies_links_as_links_and_stops_at_its_cap(export, tmp_path):
    source = candidate(export, tmp_path)
    os.symlink("/dev/zero", source / "zero")
    store.copy_export(str(source), str(tmp_path / "copy"))
    assert os.readlink(tmp_path / "copy" / "zero") == "/dev/zero"
    with pytest.raises(ValueError, match="grew past the push limit of 100 bytes"):
        store.copy_export(str(source), str(tmp_path / "small"), max_bytes=100)


def test_a_refused_push_keeps_its_whole_reason_on_one_line(tmp_path):
    inputs = keras.Input((16, 16, 3))
    table = tf.constant([0.0, 1.0])

    def lookup(t):  # fails for any pixel above 1: "indices[...] = ... is not in [0, 2)"
        return tf.gather(table, tf.cast(t[:, 0, 0, :], tf.int32)) + 0 * t[:, 0, 0, :1]

    outputs = keras.layers.Dense(4)(keras.layers.Lambda(lookup)(inputs))
    path = export_saved_model(keras.Model(inputs, outputs), str(tmp_path / "g"), 1, (16, 16))
    result = push.push(path, str(tmp_path / "served"), log=None, **EVAL)
    assert not result["pushed"]
    message = result["checks"][0]["message"]
    assert "Graph execution error:" in message and "is not in [0, 2)" in message, message
    assert "\n" not in message
