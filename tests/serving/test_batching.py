"""Request batching: TF Serving batching parameter files, the `Batcher` merging concurrent
requests within its limits, and a server run with `--enable_batching`."""

import threading
import time

import numpy as np
import pytest

from serving import client
from serving.batching import Batcher, BatchingOptions
from serving.errors import RequestError
from tests.serving.savedmodels import Server, images, write_version


def test_batching_parameters_parse_tf_serving_files():
    options = BatchingOptions.from_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 20000 }\n"
        "max_enqueued_batches { value: 4 }\nnum_batch_threads { value: 2 }\n"
        "allowed_batch_sizes: 4 allowed_batch_sizes: 8\n"
        "pad_variable_length_inputs: false\n"
    )
    assert (options.max_batch_size, options.batch_timeout, options.num_batch_threads) == (
        8,
        0.02,
        2,
    )
    assert options.allowed_batch_sizes == [4, 8]
    for text, match in [
        ("max_batch_size: 8", "max_batch_size"),
        ("max_batch_size { value: 0 }", "must be a positive integer"),
        ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "end with max_batch_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            BatchingOptions.from_text(text)


class _RecordingSignature:
    """A stand-in model: doubles `x`, records each call's batch size and concurrency."""

    name = "serving_default"

    def __init__(self, seconds=0.01, fail=False):
        self.seconds, self.fail = seconds, fail
        self.sizes, self.running, self.most_running = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.sizes.append(len(inputs["x"]))
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        if self.fail:
            raise RequestError("INTERNAL", "model failed")
        return {"y": 2 * inputs["x"]}


def _concurrently(batcher, signature, arrays):
    """Sends each of `arrays` from its own thread, all at once; returns answers or errors."""
    barrier, answers = threading.Barrier(len(arrays)), [None] * len(arrays)

    def worker(i):
        barrier.wait()
        try:
            answers[i] = batcher.run(None, signature, {"x": arrays[i]})["y"]
        except RequestError as error:
            answers[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _rows(n, seed):
    return np.arange(2 * n, dtype=np.float32).reshape(n, 2) + 100 * seed


@pytest.mark.parametrize("timeout_micros", [0, 2000])
@pytest.mark.parametrize("slots", [1, 2])
def test_batcher_merges_concurrent_requests_within_its_limits(timeout_micros, slots):
    signature = _RecordingSignature()
    batcher = Batcher(
        BatchingOptions(
            max_batch_size=8,
            batch_timeout_micros=timeout_micros,
            num_batch_threads=slots,
            max_enqueued_batches=100,
        )
    )
    arrays = [_rows(1 + i % 3, i) for i in range(8)]
    for _ in range(10):
        for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
            np.testing.assert_array_equal(y, 2 * x)
    # every row ran exactly once, in calls of at most 8 rows, at most `slots` at a time
    assert sum(signature.sizes) == 10 * sum(len(x) for x in arrays)
    assert max(signature.sizes) <= 8 and signature.most_running <= slots
    # requests that queue while the slots are busy share a call
    assert len(signature.sizes) < 10 * 8 * 3 / 4


def test_batcher_runs_a_full_batch_without_waiting_for_its_timeout():
    signature = _RecordingSignature(seconds=0)
    batcher = Batcher(BatchingOptions(max_batch_size=4, batch_timeout_micros=10_000_000))
    arrays = [_rows(1, i) for i in range(4)]
    start = time.monotonic()
    answers = _concurrently(batcher, signature, arrays)
    assert time.monotonic() - start < 5
    assert signature.sizes == [4]
    for x, y in zip(arrays, answers):
        np.testing.assert_array_equal(y, 2 * x)


def test_batcher_pads_to_allowed_sizes_and_gives_every_request_the_model_error():
    signature = _RecordingSignature()
    batcher = Batcher(BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 8)))
    arrays = [_rows(1 + i % 3, i) for i in range(5)]
    for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
        np.testing.assert_array_equal(y, 2 * x)
    assert set(signature.sizes) <= {4, 8}
    failing = _RecordingSignature(fail=True)
    batcher = Batcher(BatchingOptions(max_batch_size=2, batch_timeout_micros=10_000_000))
    answers = _concurrently(batcher, failing, [_rows(1, 0), _rows(1, 1)])
    assert failing.sizes == [2, 1, 1]  # the failed batch, then each request alone
    assert [a.message for a in answers] == ["model failed", "model failed"]


class _FailingOnNegatives(_RecordingSignature):
    """Fails a call holding a negative row, as `tf.gather` fails on an index out of range."""

    def __call__(self, inputs):
        outputs = super().__call__(inputs)
        if (inputs["x"] < 0).any():
            raise RequestError("INVALID_ARGUMENT", "indices[0] = -1 is not in [0, 10)")
        return outputs


def test_batcher_gives_a_run_time_error_only_to_the_request_that_caused_it():
    signature = _FailingOnNegatives(seconds=0)
    batcher = Batcher(BatchingOptions(max_batch_size=8, batch_timeout_micros=10_000_000))
    arrays = [_rows(1, i) for i in range(7)] + [-_rows(1, 0) - 1]
    answers = _concurrently(batcher, signature, arrays)
    assert signature.sizes[0] == 8  # one batch, then each request alone
    for x, y in zip(arrays[:7], answers[:7]):
        np.testing.assert_array_equal(y, 2 * x)
    assert isinstance(answers[7], RequestError) and answers[7].code == "INVALID_ARGUMENT"


def test_batcher_runs_empty_requests_outside_batches():
    signature = _RecordingSignature(seconds=0)
    batcher = Batcher(
        BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000, allowed_batch_sizes=(4, 8))
    )
    empty = np.zeros((0, 2), np.float32)
    first = threading.Thread(target=batcher.run, args=(None, signature, {"x": empty}))
    first.start()  # first in the window: its padding row would have been taken from it
    time.sleep(0.05)
    arrays = [_rows(1, i) for i in range(3)]
    for x, y in zip(arrays, _concurrently(batcher, signature, arrays)):
        np.testing.assert_array_equal(y, 2 * x)
    first.join()
    assert 0 in signature.sizes and 4 in signature.sizes


def test_batching_gives_the_unbatched_answers_and_refuses_large_requests(tmp_path, server):
    base = tmp_path / "m"
    write_version(str(base), 0)
    parameters = tmp_path / "batching.config"
    parameters.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 50000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
    )
    batched = Server(
        "--model_name",
        "tiny",
        "--model_base_path",
        str(base),
        "--enable_batching",
        "--batching_parameters_file",
        str(parameters),
    )
    try:
        inputs = [images(1 + i % 3, seed=10 + i) for i in range(8)]
        unbatched = [client.predict(server.url, "tiny", x, columnar=True) for x in inputs]
        answers, errors = [None] * 8, []
        barrier = threading.Barrier(8)

        def worker(i):
            barrier.wait()
            try:
                if i % 2:
                    answers[i] = client.predict(batched.url, "tiny", inputs[i], columnar=True)
                else:
                    answers[i] = client.grpc_predict(
                        batched.grpc_target, "tiny", inputs[i], input_name="images"
                    )
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for got, want in zip(answers, unbatched):
            for name, dtype in [
                ("probabilities", "float32"),
                ("logits", "float32"),
                ("classes", "int64"),
            ]:
                # JSON carries float32 values exactly (shortest round-trip form)
                np.testing.assert_array_equal(
                    np.asarray(got[name], dtype), np.asarray(want[name], dtype)
                )
        with pytest.raises(
            client.ServingError, match="Task size 9 is larger than maximum input batch size 8"
        ) as error:
            client.predict(batched.url, "tiny", images(9))
        assert error.value.status == 400
        with pytest.raises(client.ServingError, match="Task size 9") as error:
            client.grpc_predict(batched.grpc_target, "tiny", images(9), input_name="images")
        assert error.value.status == "INVALID_ARGUMENT"
    finally:
        code, output = batched.stop()
    assert code == 0, output
