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
request, at most `num_batch_threads` batches at a time (here on the requests' own
threads, see `Batcher`); a request larger than `max_batch_size` is refused with INVALID_ARGUMENT, a full
queue with UNAVAILABLE; with `allowed_batch_sizes`, batches are padded to the next
allowed size. A batch whose model call fails is run again in halves until the request
that caused the error runs alone, so only it receives the error and the others pay about
one more batch of work; its inputs are then quarantined (the last 1,024 such inputs
are remembered): sent again, they run alone and cost the batches nothing. Empty
(batch-0) requests run alone.
"""

import hashlib
import threading
import time

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


class _Task:
    """One request's inputs and, once its batch ran, its outputs or error."""

    __slots__ = ("inputs", "size", "outputs", "error", "_done")

    def __init__(self, inputs, size):
        self.inputs = inputs
        self.size = size
        self.outputs = self.error = None
        self._done = threading.Lock()
        self._done.acquire()  # released once, when the batch finished

    def finish(self, outputs=None, error=None):
        self.outputs, self.error = outputs, error
        self._done.release()

    def result(self):
        with self._done:
            pass
        if self.error is not None:
            raise self.error
        return self.outputs


class _Batch:
    def __init__(self, key, run, deadline):
        self.key = key
        self.run = run
        self.tasks = []
        self.size = 0
        self.deadline = deadline
        self.full = False  # takes no more requests
        self.queued = False  # full or past its timeout: waits for a slot
        self.taken = None  # the thread that runs it


QUARANTINE_SIZE = 1024  # inputs remembered as failing


def _digest(inputs):
    """A digest of numpy `inputs` (names, dtypes, shapes and bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(inputs):
        value = np.ascontiguousarray(inputs[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        if value.dtype != object:
            digest.update(memoryview(value).cast("B"))
        else:
            digest.update(repr(value.tolist()).encode())
    return digest.digest()


class Batcher:
    """Merges concurrent `run` calls of one signature into one model call each.

    There are no scheduler threads: the first request of a batch leads it. The leader
    waits (on one shared condition) until its batch is full or `batch_timeout_micros`
    old, and then until one of the `num_batch_threads` execution slots is free, the
    batches that became due first going first; until a slot is free a batch that is not
    full keeps taking requests. The request that fills a batch runs it at once when a
    slot is free. The model call runs outside the lock; the other requests of the batch
    sleep on their own lock until their slice of the outputs is ready.
    """

    def __init__(self, options):
        self.options = options
        self._lock = threading.Condition()
        self._open = {}  # key -> batch still taking requests
        self._ready = []  # batches full or past their timeout, waiting for a slot
        self._per_key = {}  # key -> batches enqueued (not yet running)
        self._slots = options.num_batch_threads
        self._quarantine = {}  # digests of inputs that failed alone (insertion order)

    def run(self, servable, signature, inputs):
        """Runs `signature` on `inputs` as part of a batch; returns its own outputs."""
        size = None
        for value in inputs.values():
            if np.ndim(value) == 0:
                raise invalid_argument(
                    "Batching session Run() input tensors must have at least one dimension"
                )
            if size is not None and len(value) != size:
                raise invalid_argument(
                    "Batching session Run() input tensors must have equal 0th-dimension size"
                )
            size = len(value)
        if not size:  # no inputs, or an empty request: nothing to batch
            return signature(inputs)
        if self._quarantine and _digest(inputs) in self._quarantine:
            return signature(inputs)  # it failed a batch before: it runs alone
        limit = self.options.max_batch_size
        if size > limit:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {limit}"
            )
        key = (id(servable), signature.name) + tuple(
            (k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())
        )
        task = _Task(inputs, size)
        with self._lock:
            batch = self._open.get(key)
            if batch is not None and batch.size + size > limit:
                self._close(batch)
                self._lock.notify_all()  # its leader now waits for a slot
                batch = None
            leader = batch is None
            if leader:
                if self._per_key.get(key, 0) >= self.options.max_enqueued_batches:
                    raise RequestError(
                        "UNAVAILABLE",
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                batch = _Batch(key, signature, time.monotonic() + self.options.batch_timeout)
                self._open[key] = batch
                self._per_key[key] = self._per_key.get(key, 0) + 1
            batch.tasks.append(task)
            batch.size += size
            if batch.size == limit:
                self._close(batch)
                if not leader:
                    if self._slots and not self._ready_before(batch):
                        self._take(batch)
                    self._lock.notify_all()  # its leader waits for it to fill
            if leader and not batch.taken:
                self._lead(batch)
        if batch.taken is threading.current_thread():
            self._execute(batch)
        return task.result()

    def _close(self, batch):
        """Stops `batch` taking requests and queues it for a slot (lock held)."""
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        batch.full = True
        self._enqueue(batch)

    def _enqueue(self, batch):
        if not batch.queued:
            batch.queued = True
            self._ready.append(batch)

    def _ready_before(self, batch):
        return bool(self._ready) and self._ready[0] is not batch

    def _take(self, batch):
        """Gives `batch` a slot for the current thread to run it in (lock held)."""
        self._slots -= 1
        batch.taken = threading.current_thread()
        if batch.queued:
            self._ready.remove(batch)
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        self._per_key[batch.key] -= 1

    def _lead(self, batch):
        """Waits (lock held) until `batch` is due and has a slot, or another thread took it."""
        while not batch.taken:
            if not batch.queued:
                wait = batch.deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                self._enqueue(batch)  # due; it takes requests until a slot is free
            if self._slots and self._ready[0] is batch:
                self._take(batch)
                return
            self._lock.wait()

    def _execute(self, batch):
        try:
            self._call(batch)
        finally:
            with self._lock:
                self._slots += 1
                if self._ready:
                    self._lock.notify_all()

    def _call(self, batch):
        tasks = batch.tasks
        try:
            padded = next((s for s in self.options.allowed_batch_sizes if s >= batch.size), None)
            if len(tasks) == 1 and padded in (None, batch.size):
                tasks[0].finish(batch.run(tasks[0].inputs))
                return
            merged = {}
            for k in tasks[0].inputs:
                parts = [t.inputs[k] for t in tasks]
                if padded and padded > batch.size:
                    parts.append(np.repeat(parts[0][:1], padded - batch.size, axis=0))
                merged[k] = np.concatenate(parts)
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
            for task in tasks:
                task.finish({k: v[start : start + task.size] for k, v in outputs.items()})
                start += task.size
        except BaseException as error:
            if len(tasks) == 1:
                if tasks[0].outputs is None and tasks[0].error is None:
                    tasks[0].finish(error=error)
                return
            # a request failed the batch: halves are run until it is alone, so the others
            # pay at most about one more batch of work, and it is quarantined
            self._isolate(batch, [t for t in tasks if t.outputs is None and t.error is None])

    def _isolate(self, batch, tasks):
        """Runs `tasks` (two or more) of a failed batch in halves, splitting a failing
        half again; a task failing alone gets its error and joins the quarantine."""
        middle = len(tasks) // 2
        for half in (tasks[:middle], tasks[middle:]):
            try:
                if len(half) == 1:
                    outputs = batch.run(half[0].inputs)
                else:
                    merged = {
                        k: np.concatenate([t.inputs[k] for t in half]) for k in half[0].inputs
                    }
                    outputs = batch.run(merged)
                    rows = sum(t.size for t in half)
                    if any(np.ndim(v) == 0 or len(v) != rows for v in outputs.values()):
                        raise invalid_argument("batched outputs do not match the inputs' rows")
            except BaseException as error:  # noqa: BLE001 - answered to its request
                if len(half) == 1:
                    self._quarantine_add(half[0].inputs)
                    half[0].finish(error=error)
                else:
                    self._isolate(batch, half)
                continue
            start = 0
            for task in half:
                task.finish({k: v[start : start + task.size] for k, v in outputs.items()})
                start += task.size

    def _quarantine_add(self, inputs):
        with self._lock:
            self._quarantine[_digest(inputs)] = True
            while len(self._quarantine) > QUARANTINE_SIZE:
                self._quarantine.pop(next(iter(self._quarantine)))

    def stop(self):
        """Nothing to stop: batches run on the requests' own threads."""
