"""Server-side batching: concurrent requests for one signature merged into one call.

    --enable_batching --batching_parameters_file batching.config

reads TF Serving's `BatchingParameters` text proto:

    max_batch_size { value: 32 }
    batch_timeout_micros { value: 1000 }
    max_enqueued_batches { value: 100 }
    num_batch_threads { value: 2 }
    allowed_batch_sizes: 8
    allowed_batch_sizes: 32

The message is declared here field for field as in TF Serving's
`session_bundle_config.proto` (the `tensorflow-serving-api` package does not ship it),
so files written for TF Serving parse unchanged. As in TF Serving's basic batch
scheduler, requests queue per signature (and per input shape beyond the batch
dimension); a batch runs when it is full or `batch_timeout_micros` after its first
request; a request larger than `max_batch_size` is refused with INVALID_ARGUMENT, a full
queue with UNAVAILABLE; with `allowed_batch_sizes`, batches are padded to the next
allowed size.
"""

import threading
import time
from concurrent.futures import Future

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2
from google.protobuf.message_factory import GetMessageClass

from serving.errors import RequestError, invalid_argument

_FIELDS = [  # (name, number, wrapper type or scalar, repeated)
    ("max_batch_size", 1, "Int64Value"),
    ("batch_timeout_micros", 2, "Int64Value"),
    ("max_enqueued_batches", 3, "Int64Value"),
    ("num_batch_threads", 4, "Int64Value"),
    ("thread_pool_name", 5, "StringValue"),
    ("allowed_batch_sizes", 6, "repeated int64"),
    ("pad_variable_length_inputs", 7, "bool"),
    ("enable_large_batch_splitting", 9, "BoolValue"),
    ("max_execution_batch_size", 10, "Int64Value"),
]
DEFAULTS = {  # TF Serving's defaults
    "max_batch_size": 1000,
    "batch_timeout_micros": 0,
    "max_enqueued_batches": 10,
    "num_batch_threads": 4,
}


def _batching_parameters_class():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfposenc_serving/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    for name, number, kind in _FIELDS:
        field = message.field.add(name=name, number=number)
        field.label = field.LABEL_REPEATED if kind.startswith("repeated") else field.LABEL_OPTIONAL
        if kind == "bool":
            field.type = field.TYPE_BOOL
        elif kind.endswith("int64"):
            field.type = field.TYPE_INT64
        else:
            field.type = field.TYPE_MESSAGE
            field.type_name = f".google.protobuf.{kind}"
    pool.Add(file)
    return GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParameters = _batching_parameters_class()


class BatchingOptions:
    """The scheduler's settings, from a `BatchingParameters` text proto or keywords."""

    def __init__(
        self,
        max_batch_size=DEFAULTS["max_batch_size"],
        batch_timeout_micros=DEFAULTS["batch_timeout_micros"],
        max_enqueued_batches=DEFAULTS["max_enqueued_batches"],
        num_batch_threads=DEFAULTS["num_batch_threads"],
        allowed_batch_sizes=(),
    ):
        for name, value in [
            ("max_batch_size", max_batch_size),
            ("max_enqueued_batches", max_enqueued_batches),
            ("num_batch_threads", num_batch_threads),
        ]:
            if value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")
        if batch_timeout_micros < 0:
            raise ValueError(
                f"`batch_timeout_micros` must be >= 0. Received: batch_timeout_micros={batch_timeout_micros}"
            )
        allowed = list(allowed_batch_sizes)
        if allowed and (allowed != sorted(set(allowed)) or allowed[-1] != max_batch_size):
            raise ValueError(
                "`allowed_batch_sizes` must increase and end with max_batch_size "
                f"({max_batch_size}). Received: allowed_batch_sizes={allowed}"
            )
        self.max_batch_size = max_batch_size
        self.batch_timeout = batch_timeout_micros / 1e6
        self.max_enqueued_batches = max_enqueued_batches
        self.num_batch_threads = num_batch_threads
        self.allowed_batch_sizes = allowed

    @classmethod
    def from_text(cls, text):
        proto = BatchingParameters()
        try:
            text_format.Parse(text, proto)
        except text_format.ParseError as error:
            raise ValueError(f"batching parameters: {error}") from None
        values = {name: getattr(proto, name).value for name in DEFAULTS if proto.HasField(name)}
        return cls(**values, allowed_batch_sizes=tuple(proto.allowed_batch_sizes))


class _Batch:
    def __init__(self, key, run, now):
        self.key = key
        self.run = run
        self.tasks = []  # (inputs, size, future)
        self.size = 0
        self.created = now
        self.closed = False


class Batcher:
    """Merges concurrent `run` calls of one signature into batches on worker threads."""

    def __init__(self, options):
        self.options = options
        self._lock = threading.Condition()
        self._open = {}  # key -> _Batch still taking tasks
        self._queued = []  # batches in arrival order
        self._per_key = {}  # key -> queued batch count
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, servable, signature, inputs):
        """Runs `signature` on `inputs` as part of a batch; returns its own outputs."""
        sizes = {np.shape(v)[0] if np.ndim(v) else None for v in inputs.values()}
        if None in sizes:
            raise invalid_argument(
                "Batching session Run() input tensors must have at least one dimension"
            )
        if len(sizes) != 1:
            raise invalid_argument(
                "Batching session Run() input tensors must have equal 0th-dimension size"
            )
        (size,) = sizes
        limit = self.options.max_batch_size
        if size > limit:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {limit}"
            )
        key = (id(servable), signature.name) + tuple(
            (k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())
        )
        future = Future()
        with self._lock:
            batch = self._open.get(key)
            if batch is None or batch.size + size > limit:
                if batch is not None:
                    batch.closed = True
                if self._per_key.get(key, 0) >= self.options.max_enqueued_batches:
                    raise RequestError(
                        "UNAVAILABLE",
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                batch = _Batch(key, signature, time.monotonic())
                self._open[key] = batch
                self._queued.append(batch)
                self._per_key[key] = self._per_key.get(key, 0) + 1
            batch.tasks.append((inputs, size, future))
            batch.size += size
            if batch.size == limit:
                batch.closed = True
            self._lock.notify()
        return future.result()

    def _next_batch(self):
        """Waits for a batch that is full or past its timeout; `None` when stopping."""
        with self._lock:
            while not self._stopped:
                now = time.monotonic()
                wait = None
                for batch in self._queued:
                    due = batch.created + self.options.batch_timeout
                    if batch.closed or now >= due:
                        self._queued.remove(batch)
                        self._per_key[batch.key] -= 1
                        if self._open.get(batch.key) is batch:
                            del self._open[batch.key]
                        return batch
                    wait = due - now if wait is None else min(wait, due - now)
                self._lock.wait(wait)
        return None

    def _work(self):
        while (batch := self._next_batch()) is not None:
            self._execute(batch)

    def _execute(self, batch):
        tasks = batch.tasks
        try:
            if len(tasks) == 1:
                outputs = batch.run(tasks[0][0])
                tasks[0][2].set_result(outputs)
                return
            names = tasks[0][0].keys()
            merged = {k: np.concatenate([t[0][k] for t in tasks]) for k in names}
            padded = next((s for s in self.options.allowed_batch_sizes if s >= batch.size), None)
            if padded and padded > batch.size:
                merged = {
                    k: np.concatenate([v, np.repeat(v[:1], padded - batch.size, axis=0)])
                    for k, v in merged.items()
                }
            outputs = batch.run(merged)
            for k, v in outputs.items():
                if np.ndim(v) == 0 or len(v) != (padded or batch.size):
                    raise RequestError(
                        "FAILED_PRECONDITION",
                        f"Batched output tensor '{k}' has shape {list(np.shape(v))}: its 0th "
                        "dimension does not equal the sum of the 0th dimension sizes of the "
                        "input tensors",
                    )
            start = 0
            for _, size, future in tasks:
                future.set_result({k: v[start : start + size] for k, v in outputs.items()})
                start += size
        except BaseException as error:  # every waiting request gets the model's error
            for _, _, future in tasks:
                if not future.done():
                    future.set_exception(error)

    def stop(self):
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
