"""The app as an MCP server (Model Context Protocol) at /gradio_api/mcp/: its public events as tools an agent can use.

Gradio's own MCP layer (`launch(mcp_server=True)`) makes every public event a tool exactly as the event is, which fails
here: a gr.State input (the visitor's model) is always its initial value, with a warning at every start; all MCP
clients share one Gradio session; a list of files is described by a JSON schema reference that breaks
("PointerToNowhere: '/$defs/FileData'"); a URL is handed on unfetched; galleries come back as Python reprs holding
server paths; and State outputs are popped out of range ("pop index out of range"). So the app serves the tools
itself, with the `mcp` package (the one gradio[mcp] installs), and the events stay as they are:

- Each tool is one of the public events (TOOLS), described from its handler's docstring and its API parameters, and
  called through the app's queue, as a web visitor's click: the same concurrency groups, caps, checks and errors.
- Each MCP session (the client's mcp-session-id) is a Gradio session of its own: a gradio_client Client made at its
  first tool call. `select_model` and `train` change that client's model only; its Train run and its caps are its
  own; the address the caps count is the MCP client's. The session ends on the client's DELETE, or after
  SESSION_IDLE_S with no request and no open stream, and its Gradio session with it (as a closed page: the Train
  tab's unload kills a run and deletes its files).
- Files in: each an http(s) URL or a data: URL (base64). A URL of a file this app serves (one a tool returned) is
  read where it is; other URLs are fetched only from public addresses (as Gradio fetches URLs), at most MAX_UPLOAD
  each, MAX_CALL_BYTES and FETCH_S per call. The files reach the event as uploads, so the handler checks them as it
  checks any upload (images.py's decoder, the zip and .npy checks).
- Out: PNG and GIF files as image content with their URL; other files (z .npy, the trained model's zip) as URLs the
  app serves (for an hour, as the web UI's outputs); galleries as their images with captions; tables and numbers as
  text. An error is the tool's result with isError and the app's one-line message.
- A call ends its event when it is cancelled or its HTTP request closes (a client killed mid-call gets no answer
  anyway: nothing is stored to resume): a projection or a Train run then stops, as for a visitor who leaves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
import mimetypes
import re
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import gradio as gr
import httpx
import safehttpx
from gradio import route_utils
from gradio.processing_utils import PUBLIC_HOSTNAME_WHITELIST
from gradio.utils import get_function_description, get_upload_folder
from gradio_client import Client, handle_file
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from .fairness import client_address
from .limits import MAX_UPLOAD_BYTES

PATH = "/gradio_api/mcp"  # where Gradio's own MCP server was: clients keep their URL
TOOLS = (  # the public events served as tools, and stop_training (left out of the API page)
    "select_model",
    "sample",
    "sample_gallery",
    "nearest",
    "interpolate",
    "project",
    "interpolate_latent",
    "score",
    "saliency",
    "arithmetic",
    "directions",
    "train",
    "stop_training",
)
LEFT_OUT = {"score": {"folder"}, "saliency": {"folder"}}  # the web UI's folder upload: `images` takes any files here
MAX_URLS = 64  # files per parameter (the Score tab's cap; a Train run takes more as a zip)
MAX_CALL_BYTES = 256 * 2**20  # files fetched per call in all (a Train run's cap on its images)
FETCH_S = 60  # fetching a call's files, in all
MAX_REDIRECTS = 5
SESSION_IDLE_S = 600  # an MCP session with no request in flight and no open stream for this long ends
MAX_SESSIONS = 64  # open MCP sessions (each holds a Gradio session and its heartbeat)
POLL_S = 0.25  # how often a waiting call looks at its event, its client and its progress
FILE_ROUTE = "/gradio_api/file="
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif"}
FILE_NOTE = (
    " Each file is an http(s) URL (a file URL a tool returned, or a public URL) or a data: URL with base64 content "
    "(small files only: a request is at most 4 MiB)."
)
INSTRUCTIONS = (
    "DCGAN Studio: sample, interpolate, project, score and explore a DCGAN, or train one. This MCP session is a "
    "visitor of its own: select_model and train change the model of this session only (the app's model until then). "
    "Files go in as http(s) URLs or data: URLs; images come back as image content with their URL, other files (z "
    ".npy latents, a trained model's zip) as URLs this server serves for an hour. train reports progress while it "
    "runs; stop_training ends it at its current step, keeping the model."
)


class _SessionEndNoise(logging.Filter):
    """Drops the `mcp` package's error log of a session's GET stream closed by the session's end (a client's DELETE,
    which every client sends when it closes): the stream's writer reads on from the stream the ending closed, and
    logs that as an error with a traceback. Any other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            record.getMessage() == "Error in standalone SSE writer" and isinstance(error, anyio.ClosedResourceError)
        )


logging.getLogger("mcp.server.streamable_http").addFilter(_SessionEndNoise())


class ToolInputError(Exception):
    """A tool call that cannot be made as given (a file input, most often): its message is the one line the client
    gets."""


@dataclass(frozen=True)
class Tool:
    """One tool: its event, its description and input schema, which parameters are files (and whether each takes a
    list), the values of optional parameters the API has no default for (the handler's), and its outputs' labels
    ("" for none)."""

    name: str
    description: str
    schema: dict
    files: dict[str, bool]
    defaults: dict
    labels: list[str]

    @property
    def endpoint(self) -> str:
        return f"/{self.name}"


def _parameter_schema(parameter: dict) -> dict:
    """A parameter's JSON schema as an agent should fill it: files as URL strings, choices as an enum of their type,
    and a dropdown (the model picker, which takes any Hub repo id too) as any string."""
    given = parameter["type"]
    if parameter["component"] == "File":
        url = {"type": "string"}
        return {"type": "array", "items": url, "maxItems": MAX_URLS} if given.get("type") == "array" else url
    if "enum" in given and parameter["component"] != "Dropdown":
        values = given["enum"]
        return {"type": "integer" if all(isinstance(v, int) for v in values) else "string", "enum": values}
    return {"type": given.get("type", "string")}


def describe_tool(name: str, handler, endpoint: dict) -> Tool:
    """The tool of the event `name` (its handler and its API info, as Blocks.get_api_info gives it)."""
    description, documented, returns = get_function_description(handler)
    signature = inspect.signature(handler).parameters
    properties, required, files, defaults = {}, [], {}, {}
    for parameter in endpoint["parameters"]:
        key = parameter["parameter_name"]
        if key in LEFT_OUT.get(name, ()):
            continue
        schema = _parameter_schema(parameter)
        if parameter["component"] == "File":
            files[key] = schema["type"] == "array"
        schema["description"] = _sentence(documented.get(key, "")) + (FILE_NOTE if key in files else "")
        handler_default = signature[key].default if key in signature else inspect.Parameter.empty
        if parameter["parameter_has_default"]:
            if parameter["parameter_default"] is not None:
                schema["default"] = parameter["parameter_default"]
        elif handler_default is not inspect.Parameter.empty:
            defaults[key] = handler_default
        else:
            required.append(key)
        properties[key] = schema
    if returns:
        description = _sentence(description) + " Returns: " + _sentence(" ".join(returns))
    labels = [re.sub(r"^value_\d+$", "", output["label"]) for output in endpoint["returns"]]  # "": unlabelled
    schema = {"type": "object", "properties": properties, **({"required": required} if required else {})}
    return Tool(name, description, schema, files, defaults, labels)


def _sentence(text: str) -> str:
    """Docstring text ending as a sentence, for more text to follow it."""
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def describe_tools(blocks: gr.Blocks) -> dict[str, Tool]:
    """The app's tools (TOOLS), from its events."""
    endpoints = blocks.get_api_info(all_endpoints=True)["named_endpoints"]
    handlers = {fn.api_name: fn.fn for fn in blocks.fns.values() if fn.api_name in TOOLS}
    return {name: describe_tool(name, handlers[name], endpoints[f"/{name}"]) for name in TOOLS}


# -- files in ------------------------------------------------------------------------------------------------------
def _served_file(url: str, roots: list[Path]) -> Path | None:
    """The file a URL of this app's file route names, where it is one the app serves (in Gradio's cache, or an allowed
    path); else None."""
    path = urllib.parse.urlsplit(url).path
    if FILE_ROUTE not in path:
        return None
    try:
        file = Path(urllib.parse.unquote(path.split(FILE_ROUTE, 1)[1])).resolve()
    except (OSError, ValueError):  # a name no file can have (a NUL byte)
        return None
    return file if file.is_file() and any(file.is_relative_to(root) for root in roots) else None


def _file_name(url: str, fallback: str) -> str:
    """A safe file name for a fetched file: the URL's last segment (the handlers name files in their messages)."""
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return re.sub(r"[^\w.-]+", "_", name)[:100].lstrip(".") or fallback


def _data_url(url: str, what: str, limit: int) -> tuple[bytes, str]:
    """A data: URL's bytes (base64 only) and a file suffix for its media type."""
    header, _, data = url.partition(",")
    if not header.lower().endswith(";base64"):
        raise ToolInputError(f"{what}: a data: URL must be base64 (data:MEDIA/TYPE;base64,...)")
    if len(data) * 3 // 4 > limit:
        raise ToolInputError(f"{what}: the data: URL holds more than {limit >> 20} MiB")
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ToolInputError(f"{what}: the data: URL's content is not valid base64") from None
    media = header[len("data:") :].split(";")[0].strip().lower()
    return content, (mimetypes.guess_extension(media) or "") if media else ""


async def _download(url: str, what: str, limit: int) -> bytes:
    """The body of a public URL, at most `limit` bytes: each address (and each redirect's) checked to be public first,
    as Gradio checks the URLs it fetches (safehttpx; Hugging Face's own hosts trusted as Gradio trusts them)."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            host = ""
        if not host:
            raise ToolInputError(f"{what}: {url[:200]} is not a URL with a host")
        transport = None
        if not safehttpx.matches_domain_whitelist(host, PUBLIC_HOSTNAME_WHITELIST):
            try:
                transport = safehttpx.AsyncSecureTransport(await safehttpx.async_validate_url(host))
            except ValueError:
                raise ToolInputError(
                    f"{what}: {host} is not a public address; give a public URL, a file URL this server returned, or "
                    "a data: URL"
                ) from None
        try:
            redirect, content = await _get(url, transport, what, limit)
        except httpx.HTTPError as error:
            raise ToolInputError(f"{what}: {url[:200]} could not be fetched ({type(error).__name__})") from None
        if redirect is None:
            return content
        url = urllib.parse.urljoin(url, redirect)
    raise ToolInputError(f"{what}: {url[:200]} redirects more than {MAX_REDIRECTS} times")


async def _get(url: str, transport, what: str, limit: int) -> tuple[str | None, bytes]:
    """One GET of `url` through `transport`: its redirect's location, or its body (at most `limit` bytes)."""
    async with (
        httpx.AsyncClient(transport=transport, timeout=FETCH_S) as client,
        client.stream("GET", url) as response,
    ):
        if response.is_redirect and "location" in response.headers:
            return response.headers["location"], b""
        if response.status_code != 200:
            raise ToolInputError(f"{what}: {url[:200]} answered HTTP {response.status_code}")
        too_large = ToolInputError(f"{what}: {url[:200]} is larger than {limit >> 20} MiB")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large
        content = bytearray()
        async for chunk in response.aiter_bytes():
            content += chunk
            if len(content) > limit:
                raise too_large
        return None, bytes(content)


@dataclass
class _Fetched:
    """A call's files as they are fetched: where they go, and the bytes left of its budget."""

    folder: Path
    roots: list[Path]
    left: int = MAX_CALL_BYTES
    count: int = 0

    async def file(self, url, what: str) -> str:
        """The path of the file `url` gives (read in place when this app serves it)."""
        if not isinstance(url, str) or not url.strip():
            raise ToolInputError(f"{what}: give an http(s) URL or a data: URL")
        url = url.strip()
        limit = min(MAX_UPLOAD_BYTES, self.left)
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme == "data":
            content, suffix = _data_url(url, what, limit)
            name = re.sub(r"[^\w-]+", "-", what).strip("-") + suffix
        elif scheme in ("http", "https"):
            served = _served_file(url, self.roots)
            if served is not None:
                if served.stat().st_size > limit:
                    raise ToolInputError(f"{what}: {served.name} is larger than {limit >> 20} MiB")
                self.left -= served.stat().st_size
                return str(served)
            content, name = await _download(url, what, limit), _file_name(url, what)
        else:
            raise ToolInputError(f"{what}: give an http(s) URL or a data: URL, not {url[:40]!r}")
        self.left -= len(content)
        self.count += 1
        path = self.folder / str(self.count) / name
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        return str(path)


async def fetch_files(tool: Tool, arguments: dict, folder: Path, roots: list[Path]) -> dict:
    """The event's arguments: the tool's, with each file parameter's URLs replaced by the files (written under
    `folder`), and the handler's defaults the API lacks."""
    fetched, kwargs = _Fetched(folder, roots), {**tool.defaults, **arguments}
    with anyio.move_on_after(FETCH_S) as deadline:
        for key, many in tool.files.items():
            value = kwargs.get(key)
            if value in (None, "", []):
                kwargs[key] = None
            elif many:
                if not isinstance(value, list) or len(value) > MAX_URLS:
                    raise ToolInputError(f"{key}: give a list of at most {MAX_URLS} URLs")
                kwargs[key] = [handle_file(await fetched.file(url, f"{key}[{i}]")) for i, url in enumerate(value)]
            else:
                kwargs[key] = handle_file(await fetched.file(value, key))
    if deadline.cancelled_caught:
        raise ToolInputError(f"fetching the files took over {FETCH_S} s; give smaller files, or URLs of faster servers")
    return kwargs


# -- results out ---------------------------------------------------------------------------------------------------
def _text(label: str, text: str) -> types.TextContent:
    return types.TextContent(type="text", text=f"{label}: {text}" if label else text)


def _is_file(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("path"), str) and "url" in value


def _file_content(value: dict, label: str, root: str) -> list[types.ContentBlock]:
    """A file output: its URL on this server, after its content where it is an image."""
    path = Path(value["path"])
    url = _text(label, f"{root}{FILE_ROUTE}{urllib.parse.quote(str(path))}")
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        return [url]
    return [types.ImageContent(type="image", data=base64.b64encode(path.read_bytes()).decode(), mimeType=mime), url]


def output_content(value, label: str, root: str) -> list[types.ContentBlock]:
    """One output of an event (as gradio_client returns it) as MCP content."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if _is_file(value):
        return _file_content(value, label, root)
    if isinstance(value, list) and all(isinstance(item, dict) and _is_file(item.get("image")) for item in value):
        return [block for item in value for block in _file_content(item["image"], item.get("caption") or "", root)]
    if isinstance(value, dict) and {"headers", "data"} <= value.keys():  # a table
        return [_text(label, json.dumps({"headers": value["headers"], "data": value["data"]}))]
    if isinstance(value, (dict, list)):
        return [_text(label, json.dumps(value))]
    return [_text(label, str(value))]


def result_content(tool: Tool, result, root: str) -> list[types.ContentBlock]:
    values = result if len(tool.labels) > 1 else (result,) if tool.labels else ()
    content = [
        block for value, label in zip(values, tool.labels, strict=True) for block in output_content(value, label, root)
    ]
    return content or [_text("", "Done.")]


# -- sessions and calls --------------------------------------------------------------------------------------------
@dataclass(eq=False)
class McpSession:
    """One MCP client's Gradio session: a gradio_client Client of its own, made at its first tool call (with the MCP
    client's address, which the app's caps count), and the events it has running."""

    client: Client | None = None
    running: set = field(default_factory=set)
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def connect(self, local_url: str, request: Request) -> Client:
        async with self.lock:
            if self.client is None:
                headers = {"X-Forwarded-For": client_address(request)}  # the loopback's proxy header: uvicorn trusts it
                self.client = await anyio.to_thread.run_sync(
                    partial(Client, local_url, headers=headers, download_files=False, verbose=False, ssl_verify=False)
                )
        return self.client

    async def close(self) -> None:
        """Its running events cancelled, its Gradio session closed (its heartbeat ends: the app's unload runs)."""
        with anyio.CancelScope(shield=True):
            for job in list(self.running):
                await anyio.to_thread.run_sync(job.cancel)
            if self.client is not None:
                await anyio.to_thread.run_sync(self.client.close)


class McpServer:
    """The MCP server over `blocks` (the app build_demo made), mounted at PATH by `app_kwargs` at launch."""

    def __init__(self, blocks: gr.Blocks):
        self.blocks = blocks
        self.tools = describe_tools(blocks)
        self.server = Server(blocks.title or "DCGAN Studio", instructions=INSTRUCTIONS, lifespan=self.session)
        self.server.list_tools()(self.list_tools)
        self.server.call_tool()(self.call_tool)
        self.manager = StreamableHTTPSessionManager(
            self.server, session_idle_timeout=SESSION_IDLE_S, max_sessions=MAX_SESSIONS
        )

    def app_kwargs(self) -> dict:
        """launch()'s app_kwargs: the server mounted at PATH (with Gradio's /schema listing beside it), and its
        session manager running for the app's lifetime."""

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with self.manager.run():
                yield

        routes = [Route("/schema", self.schema), Mount("/", app=self.manager.handle_request)]
        return {"routes": [Mount(PATH, routes=routes)], "lifespan": lifespan}

    @staticmethod
    @contextlib.asynccontextmanager
    async def session(server: Server):
        """Each MCP session's state, closed when the session ends."""
        session = McpSession()
        try:
            yield session
        finally:
            await session.close()

    async def list_tools(self) -> list[types.Tool]:
        return [types.Tool(name=t.name, description=t.description, inputSchema=t.schema) for t in self.tools.values()]

    async def schema(self, request: Request) -> JSONResponse:
        """The tools as Gradio's /gradio_api/mcp/schema lists them (what Hugging Face reads of an MCP Space)."""
        return JSONResponse(
            [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "inputSchema": tool.schema,
                    "meta": {"file_data_present": bool(tool.files), "mcp_type": "tool", "endpoint_name": tool.name},
                }
                for tool in self.tools.values()
            ]
        )

    async def call_tool(self, name: str, arguments: dict) -> list[types.ContentBlock]:
        """Run the tool's event in this MCP session's Gradio session; its outputs as content."""
        context = self.server.request_context
        tool = self.tools.get(name)
        if tool is None:
            raise ToolInputError(f"no tool named {name!r}")
        if self.blocks.local_url is None:
            raise ToolInputError("the app is still starting; try again in a moment")
        session: McpSession = context.lifespan_context
        client = await session.connect(self.blocks.local_url, context.request)
        roots = [Path(get_upload_folder()).resolve(), *(Path(p).resolve() for p in self.blocks.allowed_paths)]
        with tempfile.TemporaryDirectory(prefix="dcgan-mcp-") as folder:
            kwargs = await fetch_files(tool, arguments, Path(folder), roots)
            job = await anyio.to_thread.run_sync(partial(client.submit, **kwargs, api_name=tool.endpoint))
            session.running.add(job)
            try:
                result = await self.finished(job, context)
            except httpx.HTTPStatusError as error:  # refused before it was queued (fairness.Refused): its sentence
                raise ToolInputError(refusal(error)) from None
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(job.cancel)
                raise
            finally:
                session.running.discard(job)
        root = route_utils.get_root_url(context.request, context.request.url.path, self.blocks.root_path)
        return result_content(tool, result, root)

    async def finished(self, job, context):
        """The event's result once it ends, reporting its queue position and streamed updates as progress when the
        client asked for progress; the event is left (and the caller cancels it) when the client's request closes."""
        future, token = asyncio.wrap_future(job.future), context.meta.progressToken if context.meta else None
        reported = Progress()
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=POLL_S)
                if done:
                    return future.result()
                if token is not None:
                    await reported.send(job, context, token)
                if context.request is not None and await context.request.is_disconnected():
                    raise ConnectionError("the MCP client's request closed")
        finally:
            future.cancel()  # when left unfinished: its outcome is never read (the caller cancels the event)


def refusal(error: httpx.HTTPStatusError) -> str:
    """The sentence of an event the app refused to queue (HTTP 400, the sentence as `detail`), else the error's."""
    try:
        detail = error.response.json().get("detail")
    except ValueError:
        detail = None
    return detail if isinstance(detail, str) else str(error)


@dataclass
class Progress:
    """What a call has reported of its event: the notifications sent, the last queue position, the updates seen."""

    sent: int = 0
    rank: int | None = None
    updates: int = 0

    async def send(self, job, context, token) -> None:
        """Notify the client of a new queue position or a new update of a streaming event (its text outputs)."""
        messages = []
        status = job.status()
        if status.rank is not None and status.rank != self.rank and status.code.name == "IN_QUEUE":
            self.rank = status.rank
            messages.append(f"waiting in the queue: position {status.rank + 1} of {status.queue_size}")
        outputs = job.outputs()
        for update in outputs[self.updates :]:
            texts = [value for value in (update if isinstance(update, tuple) else (update,)) if isinstance(value, str)]
            messages.append(" ".join(texts) or "update")
        self.updates = len(outputs)
        for message in messages:
            self.sent += 1
            await context.session.send_progress_notification(
                token, self.sent, message=message, related_request_id=context.request_id
            )


def app_kwargs(blocks: gr.Blocks) -> dict:
    """launch()'s app_kwargs that serve `blocks`' tools over MCP at PATH."""
    return McpServer(blocks).app_kwargs()
