"""A shared check for any Keras layer, through the public Keras API only."""

import keras
import numpy as np
import tensorflow as tf


def check_layer(make_layer, input_shape, expected_output_shape=None, deterministic=True):
    """Runs the standard layer round and returns the eager output.

    Checks: `get_config`/`from_config` and `keras.saving` (de)serialisation round trips,
    symbolic and eager output shapes agree with `compute_output_shape`, the layer works
    inside `tf.function` and `tf.data.Dataset.map`, and one `fit` step runs in a model.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")
    layer = make_layer()

    eager = keras.ops.convert_to_numpy(layer(x))
    if expected_output_shape is not None:
        assert eager.shape == tuple(expected_output_shape)
    assert tuple(layer.compute_output_shape(input_shape)) == eager.shape

    symbolic = make_layer()(keras.Input(batch_shape=input_shape))
    assert tuple(symbolic.shape) == eager.shape

    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer)
    assert revived.get_config() == config
    if deterministic:
        clone.build(input_shape)
        clone.set_weights(layer.get_weights())
        np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), eager, atol=1e-6)

    if keras.backend.backend() != "tensorflow":  # tf.function / tf.data: TF only
        _fit_one_step(make_layer, x, input_shape)
        return eager

    traced = tf.function(make_layer())
    assert tuple(traced(x).shape) == eager.shape

    mapped_layer = make_layer()
    mapped_layer.build((None,) + tuple(input_shape[1:]))
    ds = tf.data.Dataset.from_tensor_slices(x).batch(input_shape[0]).map(mapped_layer)
    batch = next(iter(ds))
    assert tuple(batch.shape) == eager.shape

    _fit_one_step(make_layer, x, input_shape)
    return eager


def _fit_one_step(make_layer, x, input_shape):
    inputs = keras.Input(shape=input_shape[1:])
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(make_layer()(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, np.zeros((input_shape[0], 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def loss_and_gradients(model, x):
    """`(outputs, gradients)` of `sum(model(x, training=True) ** 2)` with respect to the
    trainable weights, on the TensorFlow or the JAX backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        with tf.GradientTape() as tape:
            y = model(x, training=True)
            loss = tf.reduce_sum(tf.square(tf.cast(y, tf.float32)))
        grads = tape.gradient(loss, model.trainable_weights)
        return keras.ops.convert_to_numpy(y), [None if g is None else np.asarray(g) for g in grads]
    if backend != "jax":
        raise NotImplementedError(f"no gradient helper for backend {backend}")
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def loss_fn(values):
        y, _ = model.stateless_call(values, frozen, x, training=True)
        return jnp.sum(jnp.square(y.astype("float32"))), y

    (_, y), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    return np.asarray(y), [np.asarray(g) for g in grads]
