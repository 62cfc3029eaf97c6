"""Table 2's rows see the same training shifts through the experiment's own pipelines,
APS is exact on the black-margin 16-px digits, crop-mode data is scored on windows of
the larger image, and the paired comparisons never call two identical models different.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfposenc.data
from tests.trainers.smoke import smoke_config
from tfposenc.data import cuts_own_crops
from trainers.shift_invariance import EXPERIMENT
from trainers.shift_invariance.claims import aggregate, check, row_interval
from trainers.shift_invariance.config import CROP_SOURCES, METHODS
from trainers.shift_invariance.evaluation import evaluate

DRAWS = 480


def smoke(out, **overrides):
    return smoke_config(EXPERIMENT, out, **overrides)


def bright_source(size, count=DRAWS):
    """`load`'s stand-in: `count` copies of a black `size`-px image with one bright
    pixel at `size // 2` (as uint8, with int64 labels)."""
    image = np.zeros((size, size, 3), "uint8")
    image[size // 2, size // 2] = 255

    def load(name, split="train", data_dir=None, download=False):
        return tf.data.Dataset.from_tensors((image, np.int64(0))).repeat(count)

    return load


def training_offsets(config, combination):
    """The bright pixel's `(row, col)` in every training view the row's model sees."""
    data = EXPERIMENT.data(config, combination)
    images = np.concatenate([x.numpy() for x, _ in data.train.take(DRAWS // config.batch_size)])
    model = EXPERIMENT.build_model(config, combination)
    views = [images]
    if cuts_own_crops(model):
        views = [keras.ops.convert_to_numpy(v) for v in model.make_views(images)]
    found = []
    for view in views:
        assert view.shape[1:3] == (config.image_size, config.image_size)
        flat = view[..., 0].reshape(len(view), -1)
        assert np.all(flat.max(axis=1) == 255.0)  # the pixel never leaves the frame
        found.append(np.stack(np.unravel_index(flat.argmax(axis=1), view.shape[1:3]), axis=1))
    return np.concatenate(found)


@pytest.mark.parametrize(
    "dataset, source_size, expected",
    [
        # 8-px image at the centre of a 16-px canvas (pixel at 8), crops after a 4-px
        # pad: the pixel lands on 4..12 in every row (old code: AugShift rows 0..16).
        ("digits", 8, range(4, 13)),
        # 48-px crop-mode image (pixel at 24): 16-px windows at 9 offsets (0..8) of its
        # centred 24-px region (pixel at 12): the pixel lands on 12 - 8 .. 12 in every row.
        ("textured_glyphs", 48, range(4, 13)),
    ],
)
def test_every_rows_pipeline_gives_the_same_maximum_offset(
    tmp_path, monkeypatch, dataset, source_size, expected
):
    monkeypatch.setattr(tfposenc.data, "load", bright_source(source_size))
    config = smoke(tmp_path, dataset=(dataset,), methods=METHODS, crop_pad=4, content_size=8,
                   batch_size=48, test_examples=4)  # fmt: skip
    seen = {}
    for combination in EXPERIMENT.combinations(config):
        positions = training_offsets(config, combination)
        seen[combination.method] = positions
        for axis in (0, 1):  # every position of the range occurs, nothing outside it
            assert sorted(set(positions[:, axis].tolist())) == list(expected), combination
    assert set(seen) == set(METHODS)
    for method, positions in seen.items():  # the same, uniform distribution in every row
        counts = np.unique(positions[:, 0], return_counts=True)[1] / len(positions)
        assert np.allclose(counts, 1 / len(expected), atol=0.07), (method, counts)


def test_crop_mode_sources_are_scored_on_windows_of_the_larger_image(tmp_path):
    config = smoke(tmp_path, dataset=("textured_glyphs",), methods=("baseline",), test_examples=8)
    combination = EXPERIMENT.combinations(config)[0]
    data = EXPERIMENT.data(config, combination)
    size = CROP_SOURCES["textured_glyphs"]
    assert tfposenc.data.info("textured_glyphs").image_size == (size, size)
    (test,) = [x.numpy() for x, _ in data.test]
    (full,) = [x.numpy() for x, _ in data.extra["views"]]
    assert test.shape == (8, 16, 16, 3) and full.shape == (8, size, size, 3)
    start = (size - 16) // 2
    np.testing.assert_array_equal(test, full[:, start : start + 16, start : start + 16])
    model = EXPERIMENT.build_model(config, combination)
    record = dict(evaluate(config, "textured_glyphs", model, data))
    assert record["curve"]["1"] == 100.0 and len(record["agreement_cons16"]) == 8
    with pytest.raises(ValueError, match="Received: image_size=40, crop_pad=4"):
        smoke(tmp_path, dataset=("textured_glyphs",), image_size=40)


def test_aps_is_exact_on_the_black_margin_16px_digits(tmp_path):
    """`--dataset digits --content-size 16` on 32 px: an 8-px black margin, so Cons.8's
    black-fill shifts are circular shifts, and APS (circular padding) is exactly
    invariant to them, trained or not."""
    config = smoke(tmp_path, dataset=("digits",), methods=("aps",), image_size=32,
                   content_size=16, test_examples=24, passes=2)  # fmt: skip
    combination = EXPERIMENT.combinations(config)[0]
    model = EXPERIMENT.build_model(config, combination)
    record = dict(evaluate(config, "digits", model, EXPERIMENT.data(config, combination)))
    assert record["cons8"] == 100.0 and record["circular_consistency"] == 100.0
    assert record["agreement_cons8"] == [1.0] * 24


def records_of(method, per_image, seeds=(0, 1, 2), digest="same"):
    """Per-seed records of one row whose per-image Cons.8 / Cons.16 are `per_image(seed)`."""
    records = []
    for seed in seeds:
        values = list(map(float, per_image(seed)))
        records.append(
            dict(
                combination=f"digits-{method}-seed{seed}",
                dataset="digits",
                method=method,
                seed=seed,
                top1=90.0 + seed,
                cons8=100 * np.mean(values),
                cons16=100 * np.mean(values),
                circular_consistency=50.0,
                step_seconds=0.1,
                examples=len(values),
                test_digest=digest,
                curve={str(m): 100.0 - m for m in range(1, 17)},
                agreement_cons8=values,
                agreement_cons16=values,
            )  # fmt: skip
        )
    return records


def test_two_identical_models_are_never_shown_different(tmp_path):
    """Through the experiment's own evaluation: the same classifier scored twice on the
    same views, as `blurpool` and as `baseline`, over three seeds."""
    config = smoke(tmp_path, methods=("baseline",), test_examples=40, passes=2)
    combination = EXPERIMENT.combinations(config)[0]
    model = EXPERIMENT.build_model(config, combination)
    data = EXPERIMENT.data(config, combination)
    measured = [dict(evaluate(config, "digits", model, data)) for _ in range(2)]
    assert measured[0]["agreement_cons16"] == measured[1]["agreement_cons16"]
    per_seed = []
    for method, record in zip(("baseline", "blurpool"), measured, strict=True):
        for seed in (0, 1, 2):
            per_seed.append({**record, "dataset": "digits", "method": method, "seed": seed,
                             "step_seconds": 0.1})  # fmt: skip
    claims = check(aggregate(per_seed, config.passes))
    assert [c["m"] for c in claims] == [8, 16]
    for claim in claims:
        assert claim["verdict"] != "shown" and claim["difference"] == 0.0
        assert claim["seeds"] == [0, 1, 2] and "blurpool - baseline" in claim["evidence"]


def test_paired_verdicts_follow_the_per_image_differences():
    rng = np.random.default_rng(0)
    base = lambda seed: rng.random(300) < 0.7  # noqa: E731
    better = lambda seed: np.ones(300)  # noqa: E731
    rows = aggregate(records_of("baseline", base) + records_of("aps", better), passes=1)
    (c8, c16) = check(rows)
    assert c8["verdict"] == "shown" and c8["low"] > 0 and c8["first"] == "aps"
    assert 25 < c8["difference"] < 35  # 100 - ~70 points
    rows = aggregate(records_of("baseline", better) + records_of("aps", base), passes=1)
    assert {c["verdict"] for c in check(rows)} == {"not shown"}
    rows = aggregate(records_of("baseline", base) + records_of("aps", better, digest="x"), 1)
    with pytest.raises(ValueError, match="same test images. Received: digits-aps test_digest='x'"):
        check(rows)
    # Only the comparisons whose two rows ran: no control, no claim.
    assert check(aggregate(records_of("aps", better), 1)) == []


def test_aggregate_means_seeds_and_interval_against_hand_computation():
    rows = aggregate(records_of("baseline", lambda seed: np.ones(100)), passes=1)
    (row,) = rows
    assert [r["seed"] for r in row["seeds"]] == [0, 1, 2]
    assert row["top1"] == 91.0 and row["top1_std"] == pytest.approx(1.0)
    low, high = row["top1_interval"]
    # t(2) quantile 4.303 times the seed SE 1/sqrt(3), widened by the Wilson term: wider.
    assert low < 91.0 - 4.303 / np.sqrt(3) and high > 91.0 + 4.303 / np.sqrt(3)
    assert row_interval([100.0], 100)[1] == 100.0 and row_interval([100.0], 100)[0] > 95
