"""Deploy the app as a Gradio Space serving a Hub model: `python -m gan deploy-space`.

Hardware (`--hardware`, HARDWARE): ZeroGPU by default, the one lane a free account has (Gradio Spaces on CPU need a
paid plan to create; free accounts in good standing may host 2 Spaces on ZeroGPU, hub-docs spaces-overview.md and
spaces-zerogpu.md). A ZeroGPU Space builds on Python ZEROGPU_PYTHON with a torch/torchvision pair from ZeroGPU's list
(ZEROGPU_TORCH) and the `spaces` package, and starts only if the app decorates a function with `@spaces.GPU` (the
GPU is lent inside those); `cpu-basic` and the paid GPU flavours build as this checkout pins them.
The hardware is asked for when the Space is created (`space_hardware`), and on a redeploy with another
(`request_space_hardware`: creating an existing repo changes nothing); `suggested_hardware` in the front matter only
suggests it to people who duplicate the Space. Without a paid plan the Hub refuses a Gradio Space on CPU (402).

The Space is uploaded through the Hub API as one commit, never with `git push` of this repo (the Hub refuses binary
files not stored in LFS/Xet, and this repo's history holds model weights as plain git objects): app.py, the whole
`gan` package (assets included), the example images, requirements.txt without gradio (a Space installs its
`sdk_version`'s), packages.txt (Debian's Fashion-MNIST and Noto Color Emoji font, for the memorisation check and the
Train tab), LICENSE, a .gitattributes storing binaries in LFS, and a README whose front matter pins the Python and
Gradio versions, names the licence, links the model and its dataset, preloads a public model's weights at build time
(the Hub cannot preload a private repo's: the app downloads them when it starts, with the Space secret HF_TOKEN) and
turns on sign-in (hf_oauth, for the Train tab's "Publish to my Hub account").
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import SpaceHardware
from huggingface_hub.errors import HfHubHTTPError

from ..checkpoint import CONFIG_NAME, read_config
from ..errors import GanError, HubError
from .errors import NETWORK_ERRORS, check_repo_id, hub_errors, resolve_token
from .load import DOWNLOADED_FILES, REPO_ID_VARIABLE, REVISION_VARIABLE
from .publish import Published

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # a DCGAN Studio checkout: app.py, requirements.txt, gan/

SPACE_REQUIREMENTS_DROPPED = ("gradio", "gradio-client", "gradio_client")  # a Space installs its sdk_version's own
SPACE_SKIPPED = ("__pycache__", "*.pyc")  # never uploaded from gan/
LFS_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.npy",
    "*.npz",
    "*.pkl",
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.webp",
    "*.gz",
    "*.zip",
    "*.tar",
)
ZEROGPU = "zero-a10g"  # the API's name of ZeroGPU hardware (whatever GPU backs it now)
# what --hardware takes: "zerogpu", then every other flavour of the API's list (cpu-basic, cpu-upgrade, t4-small...)
HARDWARE = {"zerogpu": ZEROGPU, **{flavor.value: flavor.value for flavor in SpaceHardware if flavor != ZEROGPU}}
DEFAULT_HARDWARE = "zerogpu"
ZEROGPU_PYTHON = "3.12"  # ZeroGPU offers Python 3.12 or 3.10, and numpy's pin needs 3.11 or newer
# ZeroGPU installs torch only from its own list of versions (hub-docs spaces-zerogpu.md): the newest there, with the
# torchvision built for it (tests/test_space.py resolves the Space's requirements on ZEROGPU_PYTHON)
ZEROGPU_TORCH = {"torch": "2.11.0", "torchvision": "0.26.0"}
# lends the ZeroGPU per call (`@spaces.GPU`, inert elsewhere); requirements-dev.txt pins the same (a test checks)
SPACES_REQUIREMENT = "spaces==0.51.3"
OAUTH_SCOPES = ("contribute-repos",)  # with hf_oauth: true; Spaces add openid and profile themselves
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)


def _requirement_name(line: str) -> str:
    return re.split(r"[\s=<>~!\[;]", line.strip(), maxsplit=1)[0].lower()


def _gradio_version() -> str:
    """The pinned gradio (`gradio==X` or with extras, `gradio[mcp,oauth]==X`): the Space's sdk_version."""
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        if m := re.fullmatch(r"\s*gradio\s*(?:\[[\w,\s-]*\])?\s*==\s*([\w.]+)\s*", line):
            return m.group(1)
    raise GanError(f"{PROJECT_ROOT / 'requirements.txt'} pins no gradio version (gradio==X), which a Space needs")


def space_hardware(name: str) -> str:
    """The API's hardware flavour for --hardware NAME ("zerogpu", "cpu-basic", "t4-small"...)."""
    if name not in HARDWARE:
        raise GanError(f"--hardware {name!r} is not a Space hardware: choose one of {', '.join(HARDWARE)}")
    return HARDWARE[name]


def space_requirements(hardware: str) -> str:
    """requirements.txt for the Space: this checkout's pins without gradio (a Space installs its sdk_version's), and
    on ZeroGPU its torch/torchvision pair and `spaces`."""
    lines = []
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        name = _requirement_name(line) if line.strip() and not line.lstrip().startswith("#") else None
        if name is None or name in SPACE_REQUIREMENTS_DROPPED:
            continue
        if hardware == ZEROGPU and name in ZEROGPU_TORCH:
            line = f"{name}=={ZEROGPU_TORCH[name]}"
        lines.append(line)
    if hardware == ZEROGPU:
        lines.append(SPACES_REQUIREMENT)
    return "\n".join(lines) + "\n"


def python_version() -> str:
    """The Space's Python: this checkout's README front matter says it (the tests check that every pinned
    requirement supports it)."""
    from huggingface_hub import SpaceCard

    version = SpaceCard.load(PROJECT_ROOT / "README.md").data.python_version
    if not isinstance(version, str):
        raise GanError(f'{PROJECT_ROOT / "README.md"} front matter needs python_version as a string, e.g. "3.11"')
    return version


def _skipped(path: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in SPACE_SKIPPED)


def _package_files() -> dict[str, Path]:
    """Every file of the gan package, subfolders (assets/) included, without byte-code."""
    package = PROJECT_ROOT / "gan"
    return {
        f"gan/{path.relative_to(package).as_posix()}": path
        for path in sorted(package.rglob("*"))
        if path.is_file() and not _skipped(path.relative_to(package))
    }


def preload_entry(repo_id: str, files: list[str], commit: str | None = None) -> str:
    """A `preload_from_hub` item, "REPO FILE1,FILE2[ COMMIT]": the Space downloads these while it builds."""
    return f"{repo_id} {','.join(files)}" + (f" {commit}" if commit else "")


@dataclass(frozen=True)
class SpaceModel:
    """A model repo a Space serves: the files loading it needs, the commit its preload is pinned to (None: main as
    the Space builds), the dataset it was trained on (a DCGAN Studio name such as "fashion-mnist") and whether it is
    private (a build cannot preload it: the app downloads it when it starts, with the Space's HF_TOKEN secret)."""

    repo_id: str
    weights: list[str]
    commit: str | None = None
    dataset: str | None = None
    private: bool = False


def space_files(
    models: list[SpaceModel], revision: str | None, space_id: str, *, hardware: str = ZEROGPU
) -> dict[str, bytes | Path]:
    """The Space repo: app.py, the gan package, example images, requirements.txt, packages.txt, LICENSE,
    .gitattributes and a README with the Space's front matter, serving `models` (the first by default, at `revision`;
    the others listed by the model picker; each public one preloaded at build time) on the flavour `hardware`."""
    from huggingface_hub import SpaceCard, SpaceCardData

    from .model_card import hub_dataset_id  # imports the Hub's API client, which `python -m gan --help` need not

    needed = [PROJECT_ROOT / name for name in ("app.py", "requirements.txt", "packages.txt", "README.md", "LICENSE")]
    if not all(path.is_file() for path in needed):
        raise GanError(
            "deploy-space needs a DCGAN Studio checkout (app.py, requirements.txt, packages.txt, LICENSE and "
            f"README.md next to gan/ in {PROJECT_ROOT})"
        )
    files: dict[str, bytes | Path] = {"app.py": PROJECT_ROOT / "app.py", **_package_files()}
    for path in sorted((PROJECT_ROOT / "examples").glob("*.png")):  # the Score tab's example images
        files[f"examples/{path.name}"] = path
    files["requirements.txt"] = space_requirements(hardware).encode()
    files["packages.txt"] = PROJECT_ROOT / "packages.txt"
    files["LICENSE"] = PROJECT_ROOT / "LICENSE"
    files[".gitattributes"] = GITATTRIBUTES.encode()
    data = SpaceCardData(
        title="DCGAN Studio",
        sdk="gradio",
        sdk_version=_gradio_version(),
        python_version=ZEROGPU_PYTHON if hardware == ZEROGPU else python_version(),
        app_file="app.py",
        license=SpaceCard.load(PROJECT_ROOT / "README.md").data.license,
        models=[model.repo_id for model in models],
        datasets=list(dict.fromkeys(filter(None, (hub_dataset_id(model.dataset) for model in models)))) or None,
        tags=["gan", "dcgan", "unconditional-image-generation"],
        emoji="🎨",
        colorFrom="indigo",
        colorTo="pink",
        pinned=False,
        short_description="Sample, interpolate and score with a DCGAN",
        suggested_hardware=hardware,
        preload_from_hub=[preload_entry(m.repo_id, m.weights, m.commit) for m in models if not m.private] or None,
        # sign-in for the Train tab's "Publish to my Hub account": create repos, and touch only those this app created
        hf_oauth=True,
        hf_oauth_scopes=list(OAUTH_SCOPES),
    )
    at = f" at revision `{revision}`" if revision else ""
    keep_hardware = "" if hardware == ZEROGPU else f" --hardware {hardware}"  # ZeroGPU otherwise
    first, *others = [f"[{m.repo_id}](/{m.repo_id})" for m in models]
    listed = f" (and, in its model picker, {', '.join(others)})" if others else ""
    private = [m.repo_id for m in models if m.private]
    body = (
        f"# DCGAN Studio\n\nSample, interpolate and score with the DCGAN {first}{at}{listed}.\n\n"
        f"The models come from the Space variable `{REPO_ID_VARIABLE}` (repo ids separated by commas, the first "
        f"served by default; `{REVISION_VARIABLE}` for its branch, tag or commit): change it in the Space's settings, "
        f"or redeploy with\n\n"
        f"```bash\npython -m gan deploy-space --space-id {space_id} --repo-id USER/MODEL{keep_hardware}\n```\n\n"
        + (
            f"{', '.join(private)} {'is' if len(private) == 1 else 'are'} private: the Space cannot preload "
            "private models while it builds, so the app downloads them when it starts, with a read token in the "
            "Space secret `HF_TOKEN`. "
            if private
            else "A private model needs a read token as the Space secret `HF_TOKEN`. "
        )
        + "Visitors can load another public "
        "DCGAN Studio model by typing its repo id into the model picker; that choice is theirs alone. In the Train "
        "tab they train their own, live, and may publish it to their own Hub account after signing in (OAuth with "
        "the `contribute-repos` scope: the app can create repos and change only those it created).\n"
    )
    files["README.md"] = str(SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}")).encode()
    return files


def _trained_on(api, repo_id: str, commit: str) -> str | None:
    """The dataset named in the model's config.json (read with the loader's bounds), or None when that cannot be
    read."""
    try:
        _, metadata = read_config(Path(api.hf_hub_download(repo_id, CONFIG_NAME, revision=commit)).parent)
    except (OSError, GanError, *NETWORK_ERRORS):
        return None
    return metadata.get("dataset")


@contextlib.contextmanager
def _paid_plan_needed(space_id: str, hardware: str):
    """The Hub's 402 (a Gradio Space on CPU, for an account without a paid plan) as a HubError naming the way out."""
    try:
        yield
    except HfHubHTTPError as error:
        if getattr(error.response, "status_code", None) != 402:
            raise
        said = " ".join((error.server_message or "a paid plan is needed").split())
        zerogpu = (
            f"deploy on ZeroGPU (--hardware {DEFAULT_HARDWARE}, the default: free accounts in good standing may host "
            "2 such Spaces), or "
        )
        raise HubError(
            f"the Hub refused {space_id} on --hardware {hardware} (402: {said}): "
            f"{zerogpu if hardware != DEFAULT_HARDWARE else ''}subscribe to PRO (a person) or Team/Enterprise "
            "(an organization)"
        ) from None


def _space_model(api, repo_id: str, revision: str | None, token: str | None) -> SpaceModel:
    """What a Space needs to know of a model repo (checked to be a DCGAN Studio model)."""
    check_repo_id(repo_id, "--repo-id")
    with hub_errors(f"checking the model {repo_id}", repo_id, revision, token=token):
        info = api.model_info(repo_id, revision=revision)
    names = [s.rfilename for s in info.siblings or []]
    weights = sorted(
        (name for name in names if any(fnmatch.fnmatch(name, g) for g in DOWNLOADED_FILES)),
        key=lambda name: (name != CONFIG_NAME, name),
    )  # what loading downloads, config.json first
    if CONFIG_NAME not in weights:
        raise HubError(
            f"{repo_id}@{revision or 'main'} has no {CONFIG_NAME}: it is not a DCGAN Studio model "
            "(publish one with `train.py --push-to-hub` or `python -m gan push`)"
        )
    # a --revision is preloaded at the commit it names now; main is preloaded as it is when the Space builds
    commit = info.sha if revision else None
    return SpaceModel(repo_id, weights, commit, _trained_on(api, repo_id, info.sha), bool(info.private))


def deploy_space(
    space_id: str,
    repo_ids: list[str],
    *,
    revision: str | None = None,
    token: str | None = None,
    private: bool = False,
    hardware: str = DEFAULT_HARDWARE,
) -> Published:
    """Create or update a Gradio Space serving `repo_ids` (the first by default, at `revision`; Space variables
    GAN_REPO_ID, comma-separated, and GAN_REVISION) on `hardware` (a --hardware name), in one commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    flavor = space_hardware(hardware)
    check_repo_id(space_id, "--space-id")
    repo_ids = list(dict.fromkeys(repo_ids))  # each once, in the order given
    token = resolve_token(token)
    api = HfApi(token=token)
    models = [_space_model(api, r, revision if i == 0 else None, token) for i, r in enumerate(repo_ids)]
    files = space_files(models, revision, space_id, hardware=flavor)
    with (
        hub_errors(f"deploying the Space {space_id}", space_id, writing=True, token=token),
        _paid_plan_needed(space_id, hardware),
    ):
        url = api.create_repo(
            space_id,
            repo_type="space",
            space_sdk="gradio",
            space_hardware=flavor,
            private=private or None,
            exist_ok=True,
        )
        runtime = api.get_space_runtime(space_id)
        if (runtime.requested_hardware or runtime.hardware) != flavor:  # creating an existing Space changed nothing
            api.request_space_hardware(space_id, flavor)
        api.add_space_variable(
            space_id, REPO_ID_VARIABLE, ",".join(repo_ids), description="the DCGAN Studio models to serve, first first"
        )
        if revision:
            api.add_space_variable(space_id, REVISION_VARIABLE, revision, description="its branch, tag or commit")
        elif REVISION_VARIABLE in api.get_space_variables(space_id):
            api.delete_space_variable(space_id, REVISION_VARIABLE)
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=data) for path, data in files.items()]
        served = f"{repo_ids[0]}@{revision}" if revision else repo_ids[0]
        message = f"Deploy DCGAN Studio serving {', '.join([served, *repo_ids[1:]])}"
        commit = api.create_commit(space_id, operations, repo_type="space", commit_message=message)
    for model in models:
        if model.private:
            print(f"note: {model.repo_id} is private: add a read token as the secret HF_TOKEN in the Space's settings")
    return Published(space_id, "main", commit.oid, str(url), commit.commit_url)
