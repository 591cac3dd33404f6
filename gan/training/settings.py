"""A run's settings: one frozen dataclass holding every train.py option, the recipes that fill the options left out,
the command line that makes one, the checks made before anything loads, and the rule for resuming a run."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields, replace

from ..data import DATASETS, HUB_PREFIX, SOURCES
from ..errors import GanError
from ..hub import errors as hub_errors
from ..hub import publish
from ..losses import LOSSES
from ..models import ModelConfig
from ..precision import AMP_DTYPES
from .tracking import parse_report_to

AMP_CHOICES = ("auto", *AMP_DTYPES)
RECIPES = {
    "classic": {
        "loss": "bce",
        "spectral_norm": False,
        "ema": 0.0,
        "diffaugment": "none",
        "r1": 0.0,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "lr_decay": 0.0,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    # chosen by bench/quality.py (README, "Sample quality"): the classic recipe with 10x the learning rates,
    # decayed to 0 over the last third of the run, and an EMA generator
    "studio": {
        "loss": "bce",
        "spectral_norm": False,
        "ema": 0.999,
        "diffaugment": "none",
        "r1": 0.0,
        "lr_g": 2e-3,
        "lr_d": 2e-3,
        "lr_decay": 0.33,
        "beta1": 0.5,
        "beta2": 0.999,
    },
}
DEFAULT_RECIPE = "studio"
DEFAULT_IMAGE_SIZE = 32  # --image-size of a dataset without a side of its own (folders, Hub datasets)
# Settings a resumed run must share with the run it continues.
RESUME_LOCKED = (
    "dataset",
    "data_dir",
    "data_split",
    "dataset_config",
    "image_column",
    "dataset_revision",
    "dataset_commit",  # the commit --dataset-revision named when the run began: a resumed run loads the same data
    "max_images",
    "image_size",
    "channels",
    "nz",
    "ngf",
    "ndf",
    "batch_size",
    "seed",
    "amp",
    "recipe",
    *RECIPES["classic"],
    "r1_every",
)
AT_LEAST_ONE = ("batch_size", "log_every", "sample_every", "checkpoint_every")


@dataclass(frozen=True)
class RunSettings:
    """Every train.py option, as `build_parser` documents them. Recipe settings left as None take the recipe's value;
    the Hub token is neither shown (repr) nor recorded (`to_record`)."""

    # data
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    no_download: bool = False
    channels: int = 3
    data_split: str = "train"
    dataset_config: str | None = None  # None: the dataset's default or only config
    image_column: str | None = None
    dataset_revision: str = "main"
    max_images: int | None = None
    # not a flag: the commit `dataset_revision` named when the run began, set by the run and recorded in its states
    dataset_commit: str | None = None
    # model
    image_size: int | None = None  # None: the dataset's own (its source's image_size), else DEFAULT_IMAGE_SIZE
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    # optimisation
    batch_size: int = 128
    epochs: float = 5
    steps: int | None = None
    seconds: float | None = None  # a training-time budget; with it, --steps (if given) caps the steps too
    seed: int = 0
    # recipe
    recipe: str = DEFAULT_RECIPE
    loss: str | None = None
    spectral_norm: bool | None = None
    ema: float | None = None
    diffaugment: str | None = None
    r1: float | None = None
    r1_every: int = 16
    lr_g: float | None = None
    lr_d: float | None = None
    lr_decay: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    # run
    out: str | None = None
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_last: int = 3
    eval_every: int = 500
    eval_num: int = 1000
    keep_best: bool = False
    resume: str | None = None
    report_to: str = "none"
    live_every: float = 0  # seconds between live snapshots (live.py; the app's Train tab reads them); 0 = off
    watch_stdin: bool = False
    # Hugging Face Hub
    push_to_hub: bool = False
    push_every: int | None = None
    hub_model_id: str | None = None
    hub_private: bool = False
    hub_revision: str | None = None
    hub_token: str | None = field(default=None, repr=False, metadata={"secret": True})

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; the recipes are {', '.join(RECIPES)}")
        for key, value in RECIPES[self.recipe].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)  # the one way to fill in a frozen dataclass
        if self.image_size is None:
            source = SOURCES.get(self.dataset)
            object.__setattr__(self, "image_size", (source and source.image_size) or DEFAULT_IMAGE_SIZE)

    def to_record(self) -> dict:
        """The settings as plain values, for checkpoints and exports: all but the secret ones."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("secret")}

    def total_steps(self, dataset_size: int) -> int | None:
        """Generator updates: --steps, or --epochs of `dataset_size / --batch-size` steps each; None (no step limit)
        for a --seconds budget without --steps."""
        if self.steps is not None:
            return self.steps
        if self.seconds is not None:
            return None
        return max(1, math.ceil(self.epochs * math.ceil(dataset_size / self.batch_size)))


def flag(key: str) -> str:
    """The command-line flag of a setting: `batch_size` -> `--batch-size`."""
    return "--" + key.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """train.py's command line; the defaults it shows are `RunSettings`'s."""
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a DCGAN and export it for the app (config.json + safetensors).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        type=dataset_choice,
        metavar="{" + ",".join(DATASETS) + f",{HUB_PREFIX}OWNER/NAME}}",
        help=f"{HUB_PREFIX}OWNER/NAME: an image dataset repo on the Hub (needs the `datasets` library)",
    )
    data.add_argument("--data-dir", help="torchvision root, a folder with the raw files, or (folder) your images")
    data.add_argument(
        "--no-download", action="store_true", help="never download; fail with a hint if the data is missing"
    )
    data.add_argument("--channels", type=int, choices=(1, 3), help="channels for --dataset folder and hf:")
    hub = f"(--dataset {HUB_PREFIX}OWNER/NAME)"
    data.add_argument("--data-split", metavar="SPLIT", help=f"the split to train on {hub}")
    data.add_argument(
        "--dataset-config",
        metavar="NAME",
        help=f"the config to train on, for a dataset of several {hub}; None: its default or only one",
    )
    data.add_argument("--image-column", help=f"the image column to train on {hub}; None: the first one")
    data.add_argument("--dataset-revision", metavar="REVISION", help=f"a branch, tag or commit {hub}")
    data.add_argument(
        "--max-images", type=int, metavar="N", help=f"train on the split's first N readable images, in its order {hub}"
    )
    model = parser.add_argument_group("model")
    sides = ", ".join(f"{s.image_size} for {s.name}" for s in SOURCES.values() if s.image_size not in (None, 32))
    model.add_argument(
        "--image-size",
        type=int,
        choices=(32, 64),
        help=f"the side in pixels; None: the dataset's own ({sides}), else {DEFAULT_IMAGE_SIZE}",
    )
    model.add_argument("--nz", type=int, help="latent size")
    model.add_argument("--ngf", type=int, help="generator width")
    model.add_argument("--ndf", type=int, help="discriminator width")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--batch-size", type=int)
    optim.add_argument("--epochs", type=float, help="an epoch is dataset size / batch size steps")
    optim.add_argument("--steps", type=int, help="generator updates; wins over --epochs")
    optim.add_argument(
        "--seconds",
        type=float,
        help="a training-time budget: stop after this many seconds of training (step hooks such as live snapshots "
        "and scheduled pushes not counted), or at --steps if given first; --epochs is then not used, and the "
        "learning-rate decay is planned over the time",
    )
    optim.add_argument("--seed", type=int)
    _add_recipe_arguments(parser)
    _add_run_arguments(parser)
    publish.add_publish_arguments(parser)
    parser.set_defaults(**{f.name: f.default for f in fields(RunSettings)})
    return parser


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    recipe = parser.add_argument_group("recipe", "each flag left out takes the --recipe's value (see README)")
    recipe.add_argument("--recipe", choices=tuple(RECIPES), help="'classic' is Radford et al.'s DCGAN")
    recipe.add_argument("--loss", choices=tuple(LOSSES), help="bce: non-saturating BCE-with-logits; hinge")
    recipe.add_argument(
        "--spectral-norm",
        action=argparse.BooleanOptionalAction,
        help="spectral normalisation in D (which then has no BatchNorm)",
    )
    recipe.add_argument("--ema", type=float, help="EMA decay of the sampling generator (0 = off)")
    recipe.add_argument("--diffaugment", help="comma-separated: color,translation,cutout ('none' = off)")
    recipe.add_argument("--r1", type=float, help="R1 penalty weight on real images (0 = off)")
    recipe.add_argument("--r1-every", type=int, help="lazy R1: apply every N steps, scaled by N")
    recipe.add_argument("--lr-g", type=float)
    recipe.add_argument("--lr-d", type=float)
    recipe.add_argument(
        "--lr-decay",
        type=float,
        metavar="FRACTION",
        help="decay both learning rates linearly to 0 over this last fraction of the run's steps",
    )
    recipe.add_argument("--beta1", type=float)
    recipe.add_argument("--beta2", type=float)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument("--out", help="run folder (default: runs/<dataset>)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"))
    run.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        help="autocast precision; auto = bf16 on CUDA, and on a CPU only where bf16 is measured faster than fp32 "
        "(CPUs without native bf16 train in fp32)",
    )
    run.add_argument(
        "--compile", action="store_true", help="torch.compile G and D for training (see README for when it helps)"
    )
    run.add_argument("--log-every", type=int, help="steps between metrics lines and progress-bar updates")
    run.add_argument("--sample-every", type=int, help="steps between fixed-noise sample grids")
    run.add_argument("--checkpoint-every", type=int, help="steps between training states")
    run.add_argument("--keep-last", type=int, help="training states to keep (0 = all)")
    run.add_argument(
        "--eval-every",
        type=int,
        help="steps between quick quality evaluations (where an offline feature network exists; 0 = off)",
    )
    run.add_argument("--eval-num", type=int, help="samples per quick evaluation")
    run.add_argument("--keep-best", action="store_true", help="export the evaluated best state, not the last one")
    run.add_argument("--resume", help="a training state to continue, or 'auto' for the newest in --out")
    run.add_argument(
        "--report-to",
        metavar="none|tensorboard|trackio",
        help="also log the metrics and sample grids to TensorBoard (event files in --out/tensorboard) and/or Trackio; "
        "comma-separated for both (needs the `tracking` extra; see docs/training.md)",
    )
    run.add_argument(
        "--live-every",
        type=float,
        metavar="SECONDS",
        help="write a live snapshot to --out/live/ (the sample grid, the discriminator's scores on real and generated "
        "images) every SECONDS of training, for the app's Train tab (0 = off)",
    )
    run.add_argument(
        "--watch-stdin",
        action="store_true",
        help="stop as on SIGTERM when standard input closes (how the app ties a run to itself)",
    )


def dataset_choice(text: str) -> str:
    """--dataset: a built-in dataset, `folder`, or `hf:OWNER/NAME` (the repo id is checked by `check_flags`)."""
    if text in DATASETS or text.startswith(HUB_PREFIX):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(DATASETS)}, or {HUB_PREFIX}OWNER/NAME for a Hub dataset)"
    )


def _check_data_flags(settings: RunSettings) -> None:
    """The Hub dataset flags: only with --dataset hf:OWNER/NAME, and well formed there."""
    given = {  # those that differ from their defaults
        key: getattr(settings, key)
        for key in ("data_split", "dataset_config", "image_column", "dataset_revision", "max_images")
        if getattr(settings, key) != RunSettings.__dataclass_fields__[key].default
    }
    if not settings.dataset.startswith(HUB_PREFIX):
        if given:
            raise GanError(f"{flag(next(iter(given)))} is for --dataset {HUB_PREFIX}OWNER/NAME (a Hub dataset) only")
        return
    for key in ("data_dir", "no_download"):
        if getattr(settings, key):
            raise GanError(
                f"{flag(key)} does not apply to --dataset {settings.dataset}: a Hub dataset is read into the Hugging "
                "Face cache (HF_HOME); set HF_HUB_OFFLINE=1 to train from that cache alone"
            )
    try:
        hub_errors.check_repo_id(settings.dataset[len(HUB_PREFIX) :], "--dataset")
    except GanError:
        raise GanError(
            f"--dataset {settings.dataset} does not name a dataset repo: use {HUB_PREFIX}OWNER/NAME "
            f"(letters, digits, '-', '_' and '.'), e.g. --dataset {HUB_PREFIX}huggan/smithsonian_butterflies_subset"
        ) from None
    hub_errors.check_revision(settings.dataset_revision)
    if settings.max_images is not None and settings.max_images < 1:
        raise GanError(f"--max-images must be at least 1, not {settings.max_images}")
    if not settings.data_split or not settings.data_split.strip():
        raise GanError("--data-split must name a split, e.g. train")
    if settings.dataset_config is not None and not settings.dataset_config.strip():
        raise GanError("--dataset-config must name one of the dataset's configs")
    from ..data.hub import check_datasets_installed  # the Hub API client: imported for Hub datasets only

    check_datasets_installed()


def parse_flags(argv: list[str]) -> tuple[RunSettings, dict]:
    """The settings train.py's flags make, and the flags given explicitly ({setting: value}, to check them against a
    resumed run). argparse fills in a default only where the namespace lacks the attribute, so parsing into one that
    holds a placeholder for every setting leaves in place of each flag left out that placeholder."""
    unset = object()
    placeholders = argparse.Namespace(**{f.name: unset for f in fields(RunSettings)})
    parsed = build_parser().parse_args(argv, namespace=placeholders)
    explicit = {key: value for key, value in vars(parsed).items() if value is not unset}
    return RunSettings(**explicit), explicit


def check_flags(settings: RunSettings) -> None:
    """What can be refused before the run folder is claimed and any data loads, as a GanError naming the flag."""
    for key in AT_LEAST_ONE:
        if getattr(settings, key) < 1:
            raise GanError(f"{flag(key)} must be at least 1")
    _check_data_flags(settings)
    try:  # 3 channels, the most a dataset has
        ModelConfig(settings.nz, settings.ngf, settings.ndf, 3, settings.image_size)
    except ValueError as error:
        raise GanError(f"--nz/--ngf/--ndf do not make a model this project trains: {error}") from None
    if settings.seconds is not None and not settings.seconds > 0:  # also refuses NaN
        raise GanError(f"--seconds must be a positive number of seconds, not {settings.seconds}")
    if not settings.live_every >= 0:
        raise GanError(f"--live-every must be 0 (off) or a positive number of seconds, not {settings.live_every}")
    if not 0 <= settings.lr_decay <= 1:
        raise GanError(
            f"--lr-decay {settings.lr_decay} is not a fraction of the run: "
            "give a value from 0 (off) to 1 (the whole run)"
        )
    parse_report_to(settings.report_to)  # an unknown tracker, or one not installed, fails now
    if settings.push_to_hub:  # a missing token or repo id fails now, not after training
        publish.check_push_arguments(settings.hub_model_id, settings.hub_token, settings.push_every)


def resume_settings(settings: RunSettings, explicit: dict, recorded: dict, quiet: bool = False) -> RunSettings:
    """The settings that continue the run whose checkpoint `recorded` these: each locked setting is the run's, and a
    flag given explicitly with another value is refused in one line. But --amp: `auto` keeps the run's precision,
    another value replaces it with a warning (the continuation is no longer bit for bit). Checkpoints of earlier
    versions record `auto`, which meant bf16 everywhere."""
    recorded = dict(recorded)
    if recorded.get("amp") == "auto":
        recorded["amp"] = "bf16"
    if explicit.get("amp") == "auto":
        explicit = {key: value for key, value in explicit.items() if key != "amp"}
    elif "amp" in explicit and explicit["amp"] != recorded.get("amp"):
        if not quiet:
            print(
                f"warning: --amp {explicit['amp']} replaces the resumed run's --amp {recorded.get('amp')}: training "
                "goes on, but no longer bit for bit as the uninterrupted run would have"
            )
        recorded["amp"] = explicit["amp"]
    for key in RESUME_LOCKED:
        if key in explicit and key in recorded and explicit[key] != recorded[key]:
            raise GanError(
                f"{flag(key)} {explicit[key]} differs from the resumed run's {recorded[key]}; "
                f"drop {flag(key)} or use a new --out"
            )
    return replace(settings, **{key: recorded[key] for key in RESUME_LOCKED if key in recorded})
