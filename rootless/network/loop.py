"""The forwarder's event loop: one thread, one level-triggered epoll set, timers, and
the watch on the target process whose end ends the loop.

Handlers are objects with ``ready(fd, events)``; they only make non-blocking calls, so
nothing a connection does can stall the others.
"""

from __future__ import annotations

import heapq
import select
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Tuple

EPOLLIN = select.EPOLLIN
MAX_EVENTS = 256


class Loop:
    """fd -> handler (``ready(fd, events)``), the masks asked of epoll, and timers."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.handlers: Dict[int, object] = {}
        self.masks: Dict[int, int] = {}
        self.timers: List[Tuple[float, int, Callable[[], None]]] = []
        self.ticket = 0
        self.gone: set = set()  # fds forgotten during the batch of events being handled
        self.running = True

    def watch(self, fd: int, mask: int, handler) -> None:
        """Handle ``fd``'s events with ``handler``. A mask of 0 keeps the fd out of the
        epoll set: epoll reports EPOLLHUP whatever the mask, and a socket whose peer has
        closed while nobody reads it (its data waits for the other side to drain) would
        wake the loop for it again and again."""
        if mask:
            self.epoll.register(fd, mask)
        self.handlers[fd] = handler
        self.masks[fd] = mask

    def change(self, fd: int, mask: int) -> None:
        old = self.masks.get(fd, mask)
        if old == mask:
            return
        if not mask:
            self.epoll.unregister(fd)
        elif not old:
            self.epoll.register(fd, mask)
        else:
            self.epoll.modify(fd, mask)
        self.masks[fd] = mask

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed: a later fd of the same number is new)."""
        if self.handlers.pop(fd, None) is not None:
            self.gone.add(fd)
            if self.masks.pop(fd):
                self.epoll.unregister(fd)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self.ticket += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.ticket, fn))

    def run(self) -> None:
        """Until ``running`` is False. An event of a batch for an fd closed while handling
        the batch is dropped: its number may be a new connection's by then (accepted in
        the same batch), which level-triggered epoll tells about in the next one."""
        poll, handlers, timers, gone = self.epoll.poll, self.handlers, self.timers, self.gone
        while self.running:
            timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else -1
            for fd, events in poll(timeout, MAX_EVENTS):
                if gone and fd in gone:
                    continue
                handler = handlers.get(fd)
                if handler is not None:
                    handler.ready(fd, events)
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                heapq.heappop(timers)[2]()
            gone.clear()


class ProcessEnd:
    """Stops the loop once a process has ended: its pidfd becomes readable."""

    def __init__(self, loop: Loop, pidfd: int) -> None:
        self.loop = loop
        loop.watch(pidfd, EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        self.loop.running = False


class ProcessPoll:
    """The same without pidfds (Linux < 5.3): /proc/PID/stat looked at every ``every`` s;
    the start time tells a reused pid from ours, state Z an unreaped end."""

    def __init__(self, loop: Loop, pid: int, every: float = 0.5) -> None:
        self.loop, self.pid, self.every = loop, pid, every
        self.started = self._started()
        loop.later(every, self.check)

    def _started(self):
        try:
            with open("/proc/%d/stat" % self.pid, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return None if fields[0] in (b"Z", b"X") else fields[19]

    def check(self) -> None:
        if self.started is None or self._started() != self.started:
            self.loop.running = False
        else:
            self.loop.later(self.every, self.check)
