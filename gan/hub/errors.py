"""Every Hub failure as one line that says what to do (`explain`, `hub_errors`), and the checks made before asking
the Hub anything: repo ids, revisions, a token."""

from __future__ import annotations

import contextlib
import importlib
import re

from huggingface_hub import constants, get_token
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import validate_repo_id

from ..errors import GanError, HubError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REVISION_PART = re.compile(r"[A-Za-z0-9_-][\w.-]*", re.ASCII)  # a segment of a branch, tag or commit: never . or ..
LOGIN_HINT = "run `hf auth login`, set HF_TOKEN, or pass --hub-token"


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport failures (refused, DNS, timeout, TLS) of whichever HTTP client huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        with contextlib.suppress(ImportError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


NETWORK_ERRORS = _network_errors()


def first_line(value, default: str = "") -> str:
    """The first line of an error's text, at most 200 characters (`default` where it has none)."""
    text = str(value).strip().splitlines()
    return text[0][:200] if text else default


def _scrub(text: str, token: str | None) -> str:
    text = " ".join(text.split())  # one line
    return text.replace(token, "***") if token else text


def explain(
    error: BaseException,
    *,
    action: str,
    repo_id: str,
    revision: str | None = None,
    writing: bool = False,
    web: bool = False,
) -> str | None:
    """One actionable line for a huggingface_hub / network error, or None when `error` is something else. `web`: the
    line for a visitor of the app, who has no command line: the token is the app's (or, writing, their sign-in's) and
    the server's settings are not theirs to change."""
    endpoint, rev = constants.ENDPOINT, revision or "main"
    if isinstance(error, hf_errors.OfflineModeIsEnabled):
        if web:
            return f"this app works offline, so {action} cannot reach the Hub: choose a listed model"
        return f"HF_HUB_OFFLINE=1 is set, so {action} cannot reach the Hub: unset HF_HUB_OFFLINE and try again"
    if isinstance(error, hf_errors.LocalEntryNotFoundError):  # the Hub was not reachable and the cache lacks it
        cause = error.__cause__
        if constants.HF_HUB_OFFLINE or isinstance(cause, hf_errors.OfflineModeIsEnabled):
            if web:
                return f"{repo_id}@{rev} is not on this server, which works offline: choose a listed model"
            return (
                f"{repo_id}@{rev} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set: "
                "load it once online (without HF_HUB_OFFLINE) or choose a model loaded before"
            )
        if cause is not None and (
            reason := explain(cause, action=action, repo_id=repo_id, revision=revision, writing=writing, web=web)
        ):
            if web:
                return f"{reason} (this server has no copy of {repo_id}@{rev} either)"
            return f"{reason} ({repo_id}@{rev} is not in the local cache either)"
        if web:
            return f"this server cannot reach the Hub and has no copy of {repo_id}@{rev}: try again later"
        return (
            f"cannot reach the Hub at {endpoint} and {repo_id}@{rev} is not in the local cache: "
            "check your network, proxy or HF_ENDPOINT and try again"
        )
    if isinstance(error, hf_errors.GatedRepoError):
        if web:
            return f"{repo_id} is gated: this app needs the token of an account that accepted its conditions"
        return (
            f"{repo_id} is gated: accept its conditions at {endpoint}/{repo_id}, "
            f"then use that account's token ({LOGIN_HINT})"
        )
    if isinstance(error, hf_errors.RevisionNotFoundError):
        if web:
            return f"revision {rev!r} not found in {repo_id}: give a branch, tag or commit of the repo"
        flag = "--hub-revision" if writing else "--revision"
        return (
            f"revision {rev!r} not found in {repo_id} (404): "
            f"check {flag} (a branch, tag or commit of {endpoint}/{repo_id})"
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError):
        if web:
            return f"model repo {repo_id} not found, or it is private: this app needs a token that can read it"
        return (
            f"repository {repo_id} not found on {endpoint} (404): check the id (USER/NAME); "
            f"if it is private, use a token that can read it ({LOGIN_HINT})"
        )
    if isinstance(error, hf_errors.EntryNotFoundError):
        if web:
            return f"{repo_id}@{rev} lacks a file DCGAN Studio needs: it is not a DCGAN Studio model"
        return (
            f"{repo_id}@{rev} lacks a file DCGAN Studio needs (404): is it a model published with "
            "`train.py --push-to-hub` or `python -m gan push`?"
        )
    if isinstance(error, hf_errors.HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        namespace = repo_id.split("/")[0]
        if status == 401 and web:
            if writing:
                return "the Hub rejected your sign-in (invalid or expired): sign in with Hugging Face again"
            return "the Hub rejected this app's token (invalid or expired): the app's owner needs to renew it"
        if status == 401:
            need = "a valid token with write access" if writing else "a valid token, or none for a public model"
            return f"the Hub rejected the token (401): it is missing, invalid or expired; {LOGIN_HINT} with {need}"
        if status == 403 and writing and web:
            return (
                f"the Hub refused your sign-in write access to {namespace!r}: sign in with Hugging Face again, "
                "allowing this app to write to your repos"
            )
        if status == 403 and writing:
            return (
                f"no write access to {repo_id} (403): this token's account cannot write to {namespace!r}; use a write "
                f"token of {namespace!r} or of a member of that organization, or push to your own namespace"
            )
        if status == 403 and web:
            return f"the Hub refused access to {repo_id}: this app needs a token allowed to read it"
        if status == 403:
            return f"the Hub refused access to {repo_id} (403): use a token allowed to read it ({LOGIN_HINT})"
        if status == 429:
            return f"the Hub rate-limited {action} (429): wait a few minutes and try again"
        if status is not None and status >= 500:
            return (
                f"the Hub had a server error ({status}) while {action}: try again in a few minutes "
                "(https://status.huggingface.co)"
            )
        return f"the Hub refused {action} ({status}: {first_line(error)})"
    if isinstance(error, hf_errors.HFValidationError):
        return f"{repo_id!r} is not a valid repo id: use USER/NAME (letters, digits, '-', '_' and '.')"
    if isinstance(error, NETWORK_ERRORS):
        if web:
            return f"this server cannot reach the Hub ({type(error).__name__}) while {action}: try again later"
        return (
            f"cannot reach the Hub at {endpoint} ({type(error).__name__}: {first_line(error) or 'no answer'}) while "
            f"{action}: check your network, proxy or HF_ENDPOINT and try again"
        )
    return None


@contextlib.contextmanager
def hub_errors(
    action: str, repo_id: str, revision: str | None = None, *, writing: bool = False, token: str | None = None
):
    """Turn huggingface_hub and network exceptions raised inside into one-line HubErrors, for the command line and
    for the web."""
    try:
        yield
    except GanError:
        raise
    except Exception as error:
        where = {"action": action, "repo_id": repo_id, "revision": revision, "writing": writing}
        message = explain(error, **where)
        if message is None:
            raise
        raise HubError(_scrub(message, token), web=_scrub(explain(error, **where, web=True), token)) from None


def resolve_token(token: str | None = None) -> str:
    """--hub-token, else HF_TOKEN, else the stored login; a HubError when there is none."""
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token: {LOGIN_HINT} (a write token from {constants.ENDPOINT}/settings/tokens)")
    return token


def check_repo_id(repo_id: str | None, flag: str) -> str:
    if not repo_id or not REPO_ID.match(repo_id):
        raise HubError(
            f"{flag} {repo_id!r} is not a repo id: use USER/NAME, e.g. {flag} your-name/dcgan-fashion-mnist",
            web=f"{repo_id!r} is not a repo id: use USER/NAME",
        )
    try:
        validate_repo_id(repo_id)
    except hf_errors.HFValidationError as error:
        invalid = f"{repo_id!r} is not a valid repo id ({first_line(error)})"
        raise HubError(f"{flag} {invalid}", web=invalid) from None
    return repo_id


def looks_like_repo_id(text: str) -> bool:
    return bool(REPO_ID.match(text))


def check_revision(revision: str | None) -> str | None:
    """Refuse a revision that is no branch, tag or commit name: huggingface_hub stores `refs/<revision>` in its cache,
    so one like '../../x' (which a mirror or HF_ENDPOINT may resolve, unlike the Hub) would write outside it."""
    if revision is not None and (
        len(revision) > 200
        or ".." in revision
        or revision.endswith(".lock")
        or not all(REVISION_PART.fullmatch(part) for part in revision.split("/"))
    ):
        raise HubError(
            f"revision {revision!r:.80} is not a branch, tag or commit name: use letters, digits, '-', '_', "
            "'.' and '/' (e.g. main, v1.0, refs/pr/1)"
        )
    return revision
