"""AugShift: train a classifier to map shifted views of an image to the same latent."""

import keras
from keras import ops

from tfposenc.augment.shift import check_shift_args, crop_window, shift_views
from tfposenc.layers.seed_state import SavesSeedState
from tfposenc.models.task import Task
from tfposenc.validation import check_number


@keras.saving.register_keras_serializable(package="tfposenc")
class AugShift(SavesSeedState, keras.Model):
    """Trains `classifier` on two random crops of each image.

    Its two views are its crops (Islam et al., 2021, Fig. 2: "two different crops of the
    input image"): feed it the *uncropped* images, and it cuts two windows at
    independent random offsets (see `tfposenc.augment.shift`) with the range a plain
    model's pipeline crop has, so both see the same shift distribution.
    `tfposenc.data.training_crop(dataset, max_shift, model=aug_shift)` leaves its images
    uncropped and checks that its views match the pipeline's crop. Both views go
    through the classifier in one pass. The loss is
    the compiled loss (cross-entropy by default) averaged over both views plus
    `consistency_weight` times the mean squared error between the two views' pooled
    latents (Islam et al., 2021, Fig. 2). The two terms are logged as `cross_entropy`
    and `latent_mse` (the MSE of the latents, not the shift consistency in % that
    `tfposenc.metrics.shift_consistency` measures), with `latent_norm`, the mean l2 norm of the pooled latents (an
    MSE on raw latents can also be lowered by shrinking them: watch this one).
    `consistency_weight=0` trains on the same two views with cross-entropy alone
    (plain shift augmentation). `evaluate` and `predict` run the plain classifier on
    the unshifted images; the trained network is `self.classifier`. The views are cut
    from the raw pixels the classifier normalises itself.

    The paper does not give the loss weight, the shift range or how views are cut; they
    are the arguments below.

    Args:
        classifier: a `tfposenc.models.Task` (usually `Classifier`).
        max_shift: int >= 1, the shift range (see `tfposenc.augment.shift`).
            Defaults to `8`.
        consistency_weight: float >= 0. Defaults to `1.0`.
        shift_mode: `"symmetric"` (pad `max_shift` on every side, offsets in
            `[-max_shift, max_shift]`), `"one_sided"`, `"crop"` (windows with no fill)
            or `"circular"`. Defaults to `"symmetric"`.
        padding_mode: the fill of `"symmetric"` / `"one_sided"` views. Defaults to
            `"zero"`.
        per: `"image"` (independent offsets per image) or `"batch"`. Defaults to
            `"image"`.
        crop_size: `"crop"` only, the window size: int or `(height, width)`. Defaults
            to `size - max_shift + 1`.
        seed: int or None. Defaults to `None`.

    Example:

    >>> model = AugShift(Classifier(ResNetBackbone(width=8, stem="cifar"), 10), max_shift=4)
    >>> model.compile(optimizer="adam")  # cross-entropy from logits by default
    """

    views_are_crops = True  # the pipeline feeds it uncropped images (training_crop)

    def __init__(
        self,
        classifier,
        max_shift=8,
        consistency_weight=1.0,
        shift_mode="symmetric",
        padding_mode="zero",
        per="image",
        seed=None,
        crop_size=None,
        **kwargs,
    ):
        # Names before 0.2 (still in saved configs): `mode` (shift kind), `padding` (fill).
        shift_mode = kwargs.pop("mode", shift_mode)
        padding_mode = kwargs.pop("padding", padding_mode)
        if not isinstance(classifier, Task):
            hint = ""
            if isinstance(classifier, keras.Model):
                hint = (
                    " AugShift aligns the pooled feature map, which a plain Keras model "
                    "does not expose: wrap yours as "
                    "Classifier(Backbone.from_model(model), num_classes)."
                )
            raise ValueError(
                "`classifier` must be a tfposenc Task (e.g. Classifier) with "
                f"`forward` and `pooled_features`.{hint} "
                f"Received: classifier={type(classifier).__name__}"
            )
        check_shift_args(max_shift, shift_mode, padding_mode, per)
        check_number(consistency_weight, "consistency_weight", 0.0)
        if crop_size is not None:
            if shift_mode != "crop":
                raise ValueError(
                    "`crop_size` applies to shift_mode='crop' only. Received: "
                    f"crop_size={crop_size!r} with shift_mode={shift_mode!r}"
                )
            window = crop_window((None, None), max_shift, crop_size)  # validates it
            crop_size = crop_size if isinstance(crop_size, int) else window
        super().__init__(**kwargs)
        self.classifier = classifier
        self.max_shift = max_shift
        self.consistency_weight = float(consistency_weight)
        self.shift_mode = shift_mode
        self.padding_mode = padding_mode
        self.per = per
        self.seed = seed
        self.crop_size = crop_size
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.cross_entropy_tracker = keras.metrics.Mean(name="cross_entropy")
        self.latent_mse_tracker = keras.metrics.Mean(name="latent_mse")
        self.latent_norm_tracker = keras.metrics.Mean(name="latent_norm")
        self.latent_mse_loss = keras.losses.MeanSquaredError(name="latent_mse")
        self.built = True

    def compile(self, optimizer="adam", loss="auto", **kwargs):
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def make_views(self, images):
        """The two shifted views of a batch, drawn from the model's seed."""
        return shift_views(
            images,
            self.max_shift,
            self.shift_mode,
            self.padding_mode,
            self.per,
            self.seed_generator,
            self.crop_size,
        )

    def call(self, images, training=None):
        if not training:
            return self.classifier(images, training=training)
        first, second = self.make_views(images)
        logits, latents = self.classifier.forward(
            ops.concatenate([first, second], axis=0), training=True
        )
        return {"logits": logits, "latents": latents}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, dict):
            self.cross_entropy_tracker.update_state(
                ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True))
            )
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        logits = y_pred["logits"]
        first, second = ops.split(y_pred["latents"], 2, axis=0)
        both_y = ops.concatenate([y, y], axis=0)
        both_weights = (
            None if sample_weight is None else ops.concatenate([sample_weight] * 2, axis=0)
        )
        task_loss = super().compute_loss(x, both_y, logits, both_weights, training=training)
        total = task_loss + self.consistency_weight * self.latent_mse_loss(first, second)
        self.cross_entropy_tracker.update_state(
            ops.mean(keras.losses.sparse_categorical_crossentropy(both_y, logits, from_logits=True))
        )
        self.latent_mse_tracker.update_state(ops.mean(ops.square(first - second)))
        self.latent_norm_tracker.update_state(
            ops.mean(ops.sqrt(ops.sum(ops.square(y_pred["latents"]), axis=-1)))
        )
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        training = isinstance(y_pred, dict)
        if training:
            y = ops.concatenate([y, y], axis=0)
            y_pred = y_pred["logits"]
            if sample_weight is not None:
                sample_weight = ops.concatenate([sample_weight] * 2, axis=0)
        result = super().compute_metrics(x, y, y_pred, sample_weight)
        if not training:
            # Evaluation sees unshifted images only: there is no latent MSE term.
            result.pop("latent_mse", None)
            result.pop("latent_norm", None)
        return result

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "max_shift": self.max_shift,
            "consistency_weight": self.consistency_weight,
            "shift_mode": self.shift_mode,
            "padding_mode": self.padding_mode,
            "per": self.per,
            "seed": self.seed,
            "crop_size": self.crop_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        return cls(**config)
