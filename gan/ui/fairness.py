"""Fair sharing of the app between visitors: caps on the jobs each one may have queued or running, and whether a
running job's client is still there.

Gradio's queue runs each concurrency group's events in order but skips a group that is full, so heavy work in a group
of its own never holds light work back. What it does not bound is how much one visitor queues, and its `max_size` is
shared by every event. `Admission` caps the jobs of each kind (projections, animations) per session, per client
address and in all, when a job is queued: an event's `validator` runs before Gradio queues the event, and a refusal
(`Refused`) never enters the queue. A client chooses its own session hash (a `/call/<api_name>` request without one
gets a fresh one each time), hence the cap per address; and a Space's visitors all reach the app through its proxy,
hence the cap per session as well, and the address taken from X-Forwarded-For there.

Gradio has no public API for what this module reads of its queue (gradio 6.31, pinned in requirements.txt): the events
it holds, queued or running, each with the HTTP request that queued it (the very object an event's validator and
handler get as `gr.Request.request`), and whether each event's client is still connected. Gradio marks an event dead
when its client's event stream closes, and drops it from the queue if it has not started; a running handler has to
look for itself, which `client_gone` does. (Events queued by a client that never reads their results, over
/call/<api_name>, are never seen to go: they run, but count against the caps until they end.)
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import gradio as gr
from gradio.context import LocalContext
from gradio.utils import get_space

GRACE_S = 10.0  # a job admitted but not (yet) seen in Gradio's queue counts this long: it is queued right after


class Refused(Exception):
    """A job refused by an event's validator: Gradio answers its request with HTTP 400 and this sentence as `detail`,
    which the page shows as an error, as it shows a handler's gr.Error (gradio_client raises httpx.HTTPStatusError,
    the sentence in its response). Not `gr.validate(False, ...)`, the validator's own answer: the page writes that
    on the event's first input (the Train tab's seed) as if the input were wrong, and gradio_client prefixes it with
    "1 parameter(s) failed validation"."""


@dataclass(frozen=True)
class Caps:
    """The most jobs of one kind that may be queued or running at once."""

    what: str  # the jobs, as messages name them: "projections"
    per_session: int
    per_address: int
    total: int


@dataclass
class _Ticket:
    kind: str
    session: str | None  # None: the request named no session (each such request is a session of its own)
    address: str
    request: object  # the HTTP request that queued the job, which Gradio keeps on its event
    since: float


class Admission:
    """The jobs admitted and not yet ended, by kind, and the caps on them. Thread-safe: validators and handlers run in
    Gradio's worker threads. `held` says which requests' events Gradio holds (queued or running), as ids: a job whose
    event Gradio dropped (its client left before it started) stops counting, though its handler never ran."""

    def __init__(
        self,
        caps: dict[str, Caps],
        held: Callable[[], set[int]],
        grace_s: float = GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.caps = caps
        self.held = held
        self.grace_s = grace_s
        self.clock = clock
        self.tickets: list[_Ticket] = []
        self.lock = threading.Lock()

    def admit(self, kind: str, session: str | None, address: str, request: object) -> str | None:
        """None, the job counting from now on; or, when it would go over a cap, the sentence saying which."""
        caps = self.caps[kind]
        with self.lock:
            held, now = self.held(), self.clock()
            self.tickets = [t for t in self.tickets if id(t.request) in held or now - t.since < self.grace_s]
            same = [t for t in self.tickets if t.kind == kind]
            mine = sum(session is not None and t.session == session for t in same)
            theirs = sum(t.address == address for t in same)
            if mine >= caps.per_session:
                return (
                    f"you already have {mine} {caps.what} queued or running (at most {caps.per_session} per "
                    "visitor); wait for one to finish"
                )
            if theirs >= caps.per_address:
                return (
                    f"{theirs} {caps.what} from your address are already queued or running (at most "
                    f"{caps.per_address}); wait for one to finish"
                )
            if len(same) >= caps.total:
                return (
                    f"the server already has {len(same)} {caps.what} queued or running (at most {caps.total}); "
                    "try again in a minute"
                )
            self.tickets.append(_Ticket(kind, session, address, request, now))
            return None

    def holds(self, kind: str, session: str) -> bool:
        """Whether `session` has a job of `kind` admitted and not yet ended (queued or running)."""
        with self.lock:
            return any(t.kind == kind and t.session == session for t in self.tickets)

    def release(self, request: object) -> None:
        """The job queued by `request` has ended (its handler returned or raised)."""
        with self.lock:
            self.tickets = [t for t in self.tickets if t.request is not request]

    def validator(self, kind: str) -> Callable:
        """An event's `validator=`: refuses the job (`Refused`, with the cap's sentence) when it would go over a cap
        of `kind`. Gradio passes the event's inputs after the request (a positional gr.Request is filled in)."""

        def admit(request: gr.Request, *inputs):
            refusal = self.admit(kind, request.session_hash, client_address(request), request.request)
            if refusal:
                raise Refused(refusal)
            return [None] * len(inputs)

        return admit

    @contextmanager
    def running(self, request: gr.Request | None) -> Iterator[None]:
        """Around a handler's work: its job stops counting when the work ends, however it ends."""
        try:
            yield
        finally:
            if request is not None:
                self.release(request.request)


def client_address(request: gr.Request) -> str:
    """The client's address, for the caps per address. Uvicorn already takes it from X-Forwarded-For when the peer is
    a trusted proxy (FORWARDED_ALLOW_IPS; loopback by default). A Space's proxy is not one of those, so there the last
    public address in X-Forwarded-For is the visitor's: entries after it are the Space's own proxies, and a client can
    write anything before it. Off a Space the header is ignored, since any client could send one."""
    if get_space():
        for entry in reversed(request.headers.get("x-forwarded-for", "").split(",")):
            try:
                if ipaddress.ip_address(entry.strip()).is_global:
                    return entry.strip()
            except ValueError:
                continue
    client = request.client
    return client.host if client else "unknown"


def held_requests(blocks: gr.Blocks) -> set[int]:
    """Ids of the HTTP requests that queued the events `blocks`' queue holds, queued or running. (Reading the dict
    from a worker thread is safe: list() copies it in one step under the GIL.)"""
    return {id(event.request) for event in list(blocks._queue.event_ids_to_events.values())}


def current_event() -> str | None:
    """The id of the queued event the calling handler runs for; None outside one (a handler called in-process)."""
    return LocalContext.event_id.get(None)


def client_gone(blocks: gr.Blocks, event_id: str | None = None) -> bool:
    """Whether the client of a queued event (by default the one this handler runs for) has gone: its event stream
    closed (Gradio marks the event dead), its session's heartbeat stopped (a closed page: Gradio marks the event
    closed), or the job was cancelled (Gradio dropped the event). False outside a queued event."""
    event_id = event_id or current_event()
    if event_id is None:
        return False
    event = blocks._queue.event_ids_to_events.get(event_id)
    return event is None or not event.alive or event.closed
