"""waitress's poll loop, incremental: idle connections cost a pass nothing.

waitress's `poll2` builds a new `poll` set on every pass, asking every open connection
whether it is readable and writable (two Python calls each): with 2,000 idle connections
a server doing 500 requests/s spent most of its time there (142-273 req/s left, p99 173
ms). Here the set is an `epoll` kept between passes, and a pass asks only the
connections that may have changed: those with an event in the previous pass, the busy
ones (a request being received, queued or answered, a reply being written, a close
pending), new ones, and every one after the server's periodic maintenance (timeouts),
which is what changes an idle connection without an event on it. An idle keep-alive
connection (readable, nothing to write, no request) is asked again only when it sends.
"""

import select

from waitress import wasyncore

_READ = select.EPOLLIN | select.EPOLLPRI
_WRITE = select.EPOLLOUT
IDLE_FLAGS = _READ  # what an idle connection asks for


class IncrementalPoll:
    """One pass of the loop over `dispatchers` (fd -> waitress dispatcher) at a time.

    Args:
        dispatchers: dict. waitress's socket map (the server's `_map`).
        idle: callable. `idle(dispatcher, flags)` is whether the dispatcher, asked for
            `flags`, can change only through an event on its own socket.
    """

    def __init__(self, dispatchers, idle):
        self.map = dispatchers
        self.idle = idle
        self.epoll = select.epoll()
        self.registered = {}  # fd -> (dispatcher, flags)
        self.busy = set()  # fds asked on every pass
        self.dirty = set(dispatchers)  # fds to ask on the next pass

    def mark(self, fd=None):
        """Asks `fd` (None: every dispatcher) again on the next pass."""
        if fd is None:
            self.dirty.update(self.map)
        else:
            self.dirty.add(fd)

    def _ask(self, fd):
        obj = self.map.get(fd)
        known = self.registered.get(fd)
        if obj is None:
            self._forget(fd)
            return
        flags = 0
        if obj.readable():
            flags |= _READ
        if obj.writable() and not obj.accepting:
            flags |= _WRITE
        if known is not None and known[0] is not obj:  # the fd number was reused
            self._forget(fd)
            known = None
        if not flags:  # as poll2: a dispatcher asking for nothing hears nothing (not HUP)
            self._forget(fd)
            self.busy.add(fd)
            return
        if known is None:
            self.epoll.register(fd, flags)
        elif known[1] != flags:
            self.epoll.modify(fd, flags)
        self.registered[fd] = (obj, flags)
        if self.idle(obj, flags):
            self.busy.discard(fd)
        else:
            self.busy.add(fd)

    def _forget(self, fd):
        self.busy.discard(fd)
        if self.registered.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):  # closed already: epoll dropped it
                pass

    def run(self, timeout):
        """Asks what may have changed, waits up to `timeout` s, handles the events."""
        ask, self.dirty = self.dirty | self.busy, set()
        for fd in ask:
            self._ask(fd)
        try:
            events = self.epoll.poll(timeout)
        except InterruptedError:
            events = []
        for fd, flags in events:
            self.dirty.add(fd)
            obj = self.map.get(fd)
            if obj is not None:
                wasyncore.readwrite(obj, flags)

    def close(self):
        self.epoll.close()
