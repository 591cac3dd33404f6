"""Admission of queued jobs in-process: the caps per session, per address and in all, what stops counting a job, and
which address a request comes from."""

from __future__ import annotations

import gradio as gr
import pytest
from starlette.requests import Request

from gan.ui.fairness import Admission, Caps, Refused, client_address

CAPS = {
    "projection": Caps("projections", per_session=2, per_address=3, total=4),
    "animation": Caps("interpolations", per_session=1, per_address=1, total=1),
}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gate():
    """An Admission whose view of Gradio's queue is `gate.queued` (requests by id) and whose clock is `gate.clock`."""
    queued: set[int] = set()
    admission = Admission(CAPS, lambda: queued, grace_s=10, clock=Clock())
    admission.queued = queued
    return admission


def test_caps_per_session_per_address_and_in_all(gate):
    requests = [object() for _ in range(6)]
    assert gate.admit("projection", "s1", "1.1.1.1", requests[0]) is None
    assert gate.admit("projection", "s1", "1.1.1.1", requests[1]) is None
    assert "you already have 2 projections queued or running (at most 2 per visitor)" in gate.admit(
        "projection", "s1", "1.1.1.1", object()
    )
    assert gate.admit("projection", "s2", "1.1.1.1", requests[2]) is None  # a new session hash from the same address
    assert "3 projections from your address are already queued or running (at most 3)" in gate.admit(
        "projection", "s3", "1.1.1.1", object()
    )
    assert gate.admit("projection", None, "2.2.2.2", requests[3]) is None  # no session hash: counted by address only
    assert "the server already has 4 projections queued or running (at most 4)" in gate.admit(
        "projection", None, "3.3.3.3", object()
    )
    assert gate.admit("animation", "s1", "1.1.1.1", requests[4]) is None  # kinds are counted apart
    gate.release(requests[0])
    assert gate.admit("projection", "s1", "4.4.4.4", requests[5]) is None


def test_a_job_dropped_from_gradios_queue_stops_counting_after_the_grace(gate):
    first, second = object(), object()
    assert gate.admit("animation", "s1", "1.1.1.1", first) is None
    gate.queued.add(id(first))
    gate.clock.now = 60  # still queued: still counted
    assert "at most 1 per visitor" in gate.admit("animation", "s1", "1.1.1.1", second)
    gate.queued.clear()  # Gradio dropped it (its client left) without running the handler
    assert gate.admit("animation", "s1", "1.1.1.1", second) is None
    gate.clock.now = 65  # admitted, not yet seen in the queue: counted for the grace period
    assert "at most 1 per visitor" in gate.admit("animation", "s1", "1.1.1.1", object())


def test_the_validator_passes_every_input_or_refuses_with_the_caps_sentence(gate):
    request = gr.Request(Request({"type": "http", "headers": [], "client": ("5.5.5.5", 1)}), session_hash="s9")
    validator = gate.validator("animation")
    assert validator(request, 1, 2, 3) == [None, None, None]
    with pytest.raises(Refused) as refused:  # an error, not gr.validate's mark on an input
        validator(gr.Request(Request({"type": "http", "headers": [], "client": ("5.5.5.5", 2)})), 1, 2, 3)
    assert str(refused.value) == (
        "1 interpolations from your address are already queued or running (at most 1); wait for one to finish"
    )
    with gate.running(request):
        pass
    assert validator(request, 1, 2, 3) == [None, None, None]  # released when the handler's work ended


def test_the_address_comes_from_x_forwarded_for_only_on_a_space(monkeypatch):
    def request(forwarded: str) -> gr.Request:
        headers = [(b"x-forwarded-for", forwarded.encode())]
        return gr.Request(Request({"type": "http", "headers": headers, "client": ("10.0.0.7", 1)}))

    assert client_address(request("8.8.8.8")) == "10.0.0.7"  # anyone may send the header
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "alice/studio")
    assert client_address(request("8.8.8.8")) == "8.8.8.8"
    assert client_address(request("1.2.3.4, 8.8.8.8, 10.1.2.3")) == "8.8.8.8"  # proxies to the right, forgeries left
    assert client_address(request("not an address, 10.1.2.3")) == "10.0.0.7"
