"""The model picker: which models a visitor may choose, the cache of loaded models all sessions share, and the
picker's row at the top of the app.

The picker lists the startup and bundled models and takes any Hub repo id; the choice lives in the visitor's session
(a gr.State holding a ModelRef, which the API does not expose), and loaded models sit in one small LRU `ModelCache`
shared by all sessions, bounded by count and bytes. A failed load raises gr.Error and leaves the visitor's model as it
was. What visitors download stays bounded on disk too (hub.prune_cache), and what they see names models by repo id or
folder name, never by the server's paths.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import BUNDLED_MODELS
from ..checkpoint import LoadedModel, load_model
from ..errors import GanError
from ..hub.errors import looks_like_repo_id
from ..hub.load import download_export, load_snapshot, prune_cache
from .assets import model_summary, shown_source
from .handlers import shows_errors

MODEL_GONE = (
    "The model you trained is no longer on this server (the server restarted, or you left the page and its space was "
    "needed). Download a model's zip at the end of its run to keep it; pick another model above, or train again."
)
MODEL_CACHE_SIZE = 4  # Hub models kept loaded for all visitors, besides the startup and bundled ones
MODEL_CACHE_BYTES = 512 * 2**20  # and their weights at most (but the latest is kept whatever its size)
MAX_DOWNLOAD_BYTES = 256 * 2**20  # a visitor-typed repo whose weights are larger is refused
HUB_CACHE_BYTES = 1024 * 2**20  # downloads of visitor-typed repos kept on disk: at most this much
HUB_CACHE_REVISIONS = 16  # and this many revisions, most recently downloaded first


@dataclass(frozen=True)
class ModelRef:
    """A session's model: a local export folder (startup or bundled)
    or a Hub repo pinned to the commit it resolved to."""

    folder: str | None = None
    repo_id: str | None = None
    revision: str | None = None  # as the visitor asked (None = main)
    commit: str | None = None

    @classmethod
    def of(cls, model: LoadedModel) -> ModelRef:
        origin = model.metadata.get("hub")
        if origin:
            revision = None if origin["revision"] == "main" else origin["revision"]
            return cls(repo_id=origin["repo_id"], revision=revision, commit=origin["commit"])
        return cls(folder=str(model.source))

    def load(self) -> LoadedModel:
        if self.repo_id:  # by commit: the local Hub cache answers, even offline
            return load_snapshot(download_export(self.repo_id, self.commit), self.repo_id, self.revision)
        return load_model(self.folder)


@dataclass(frozen=True)
class OwnModel:
    """A model a visitor trained in the Train tab: theirs alone (a gr.State's value), listed in their own picker under
    `label`; `folder` is its run folder, deleted with their session."""

    label: str
    ref: ModelRef
    folder: str


def model_bytes(model: LoadedModel) -> int:
    """Memory held by a loaded model's tensors: weights and BatchNorm statistics of both networks."""
    modules = [module for module in (model.generator, model.discriminator) if module is not None]
    return sum(t.numel() * t.element_size() for module in modules for t in (*module.parameters(), *module.buffers()))


class ModelCache:
    """Loaded models shared by every session, thread-safe: pinned ones (startup, bundled) plus at most `capacity` others
    of at most `max_bytes` in all (as `size` counts them), least recently used first out; the latest one stays
    whatever its size (downloads are bounded by MAX_DOWNLOAD_BYTES). A session keeps only a ModelRef, so an evicted
    model is simply loaded again."""

    def __init__(self, capacity: int = MODEL_CACHE_SIZE, max_bytes: int = MODEL_CACHE_BYTES, size=model_bytes):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.size = size
        self.pinned: dict[ModelRef, LoadedModel] = {}
        self.recent: OrderedDict[ModelRef, LoadedModel] = OrderedDict()
        self.sizes: dict[ModelRef, int] = {}
        self.lock = threading.Lock()
        self.loading = threading.Lock()  # one load at a time; cache hits never wait for it

    def pin(self, ref: ModelRef, model: LoadedModel) -> None:
        with self.lock:
            self.pinned[ref] = model

    def _lookup(self, ref: ModelRef) -> LoadedModel | None:
        with self.lock:
            if ref in self.pinned:
                return self.pinned[ref]
            if ref in self.recent:
                self.recent.move_to_end(ref)
                return self.recent[ref]
        return None

    def get(self, ref: ModelRef, load=None) -> LoadedModel:
        model = self._lookup(ref)
        if model is not None:
            return model
        with self.loading:
            model = self._lookup(ref) or (load or ref.load)()
        with self.lock:
            if ref not in self.pinned:
                self.recent[ref] = model
                self.sizes[ref] = self.size(model)
                self.recent.move_to_end(ref)
                while len(self.recent) > 1 and (
                    len(self.recent) > self.capacity or sum(self.sizes.values()) > self.max_bytes
                ):
                    del self.sizes[self.recent.popitem(last=False)[0]]
        return model


def bundled_folder(model: LoadedModel) -> Path | None:
    """The bundled export `model` was loaded from (one of gan.BUNDLED_MODELS), or None."""
    source = Path(model.source).resolve()
    return next((folder for folder in BUNDLED_MODELS if folder.resolve() == source), None)


def label(model: LoadedModel) -> str:
    """A model as the picker lists it: a Hub repo id (@revision), or a local export's name and folder."""
    origin = model.metadata.get("hub")
    if origin:
        return origin["repo_id"] + ("" if origin["revision"] == "main" else f"@{origin['revision']}")
    return f"{shown_source(model.name)} ({'bundled' if bundled_folder(model) else Path(model.source).name})"


class ModelPicker:
    """The models visitors may choose: the startup `model` and the `listed` ones (export folders, or models already
    loaded, such as a Space's other Hub repos; listed and pinned in the cache; a folder that does not load is left
    out) and any Hub repo id; `select_model` is the picker's handler."""

    def __init__(self, model: LoadedModel, listed: list = (), cache_size: int = MODEL_CACHE_SIZE):
        self.cache = ModelCache(cache_size)
        self.startup = model
        self.initial = ModelRef.of(model)
        self.visitor_repos: set[str] = set()  # Hub repos typed into the picker, whose downloads are bounded
        self.cache.pin(self.initial, model)
        self.choices = {label(model): self.initial}
        for item in listed:
            try:
                extra = item if isinstance(item, LoadedModel) else load_model(item)
            except GanError:
                continue
            ref = ModelRef.of(extra)
            self.cache.pin(ref, extra)
            self.choices.setdefault(label(extra), ref)

    def current(self, ref: ModelRef | None) -> LoadedModel:
        """The session's model, loaded again if the cache let it go (the startup model when it chose none)."""
        try:
            return self.cache.get(ref or self.initial)
        except GanError as error:
            if ref is not None and ref.folder is not None and not Path(ref.folder).is_dir():
                raise gr.Error(MODEL_GONE, print_exception=False) from None
            raise gr.Error(f"your model could not be reloaded ({error.web}); pick it again or choose another") from None

    @shows_errors
    def select_model(self, model: str, revision: str = "", ref: ModelRef | None = None, own: OwnModel | None = None):
        """Switch this session's model to a listed one or a Hub model repo, and describe it: dataset, size, training
        and recorded evaluation. An error leaves the session's model as it was. (MCP tool calls keep no session:
        the other tools then still use the app's model; use this tool to check and describe a model.)

        Args:
            model: a listed model's label, or a Hub repo id (USER/NAME) of a DCGAN Studio model
            revision: a branch, tag or commit of the Hub repo; empty for main

        Returns:
            the model's summary, in Markdown
        """
        choice, revision = (model or "").strip(), (revision or "").strip() or None
        if own is not None and choice == own.label:  # the model this visitor trained, loaded again if evicted
            return own.ref, model_summary(self.current(own.ref))
        if choice in self.choices and not (revision and looks_like_repo_id(choice)):
            chosen = self.choices[choice]
            loaded = self.cache.get(chosen)
        elif looks_like_repo_id(choice):
            chosen, loaded = self._download(choice, revision)
        else:
            raise gr.Error(f"{choice!r} is neither a listed model nor a Hub repo id (USER/NAME)")
        return chosen, model_summary(loaded)

    def _download(self, repo_id: str, revision: str | None) -> tuple[ModelRef, LoadedModel]:
        """A visitor-typed Hub repo, downloaded within the bounds (its weights' size, the Hub cache's on disk)."""
        self.visitor_repos.add(repo_id)
        folder = download_export(repo_id, revision, max_bytes=MAX_DOWNLOAD_BYTES)
        kept = {folder.name, self.initial.commit or folder.name}  # never the startup model's download, nor this one
        prune_cache(self.visitor_repos, kept, HUB_CACHE_BYTES, HUB_CACHE_REVISIONS)
        chosen = ModelRef(repo_id=repo_id, revision=revision, commit=folder.name)
        return chosen, self.cache.get(chosen, lambda: load_snapshot(folder, repo_id, revision))


@dataclass
class PickerRow:
    """The picker's components: the per-visitor model (a gr.State, out of the API), the event of a model loaded
    (which the Sample tab follows with fresh samples), the dropdown and the summary."""

    session_model: gr.State
    model_loaded: object
    choice: gr.Dropdown
    summary: gr.Markdown


def build_row(picker: ModelPicker, own: gr.State | None = None) -> PickerRow:
    """The picker's row and the model summary; `own` holds the OwnModel a visitor trained (the Train tab's), which
    their picker lists too."""
    session_model = gr.State(picker.initial)  # per visitor: switching never affects anyone else
    with gr.Row():
        choice = gr.Dropdown(
            list(picker.choices),
            value=next(iter(picker.choices)),
            allow_custom_value=True,
            scale=3,
            label="Model",
            info="a listed model, or type a Hub repo id (USER/NAME)",
        )
        revision = gr.Textbox(label="Revision", placeholder="main", info="branch, tag or commit (Hub models)", scale=1)
        load_button = gr.Button("Load model", scale=1, size="md")
    summary = gr.Markdown(model_summary(picker.startup), elem_id="summary")
    model_loaded = load_button.click(
        picker.select_model,
        [choice, revision, session_model, *([own] if own is not None else [])],
        [session_model, summary],
        api_name="select_model",
        concurrency_limit=1,
        concurrency_id="loading",
    )
    return PickerRow(session_model, model_loaded, choice, summary)
