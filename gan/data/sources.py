"""Every dataset source, one entry each: what `--dataset NAME` loads, who made it and on what terms, what it is
(channels, size, how many images), where it lives on the Hub (for a model card's `datasets:` link and licence),
whether it is on this machine, and whether the app's Train tab offers it. Every other module reads these entries: a
new source is one entry here (and its loader's module).

Loaders are named as `module:function` of this package and imported when a set is loaded, so that reading an entry
loads neither torchvision nor `datasets`. A built-in loader takes (data_dir, image_size, channels, download, split)
and returns (uint8 images (N, C, H, W), labels or None, where they came from), and optionally a fourth value, the
credit, where the files found name more than the entry does (the version of a font). Hub datasets (`hf:OWNER/NAME`) are
the one source named by a prefix: `HUB` describes them, and their credit and licence come from their own card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

HUB_PREFIX = "hf:"  # --dataset hf:OWNER/NAME: a dataset repo on the Hub (data/hub.py)


@dataclass(frozen=True)
class DataSource:
    name: str  # --dataset NAME
    title: str  # how the app names it
    loader: str  # "module:function" of this package (see the module's docstring)
    credit: str  # who made it, as config.json and the model card say
    license: str  # its terms, as config.json records them
    hub_license: str = "other"  # the model card's `license:` id ("other": the card's Dataset section gives the terms)
    hub_id: str | None = None  # the same data on the Hub, for the model card's `datasets:` link
    channels: int | None = None  # native channels; None: the run's --channels (folders, Hub datasets)
    # the side a run trains at unless --image-size says (28x28 sets: 32, once padded); None: 32
    image_size: int | None = None
    images: int | None = None  # training images, to size a set before loading it
    here: Callable[[], bool] = lambda: True  # its files are on this machine (nothing downloaded to find out)
    in_train_tab: bool = False  # offered by the app's Train tab (where it is here)
    test_split: bool = False  # has a 'test' split besides 'train'
    # "module:function" (data_dir) -> one group per training image, where images come in families (an emoji and its
    # skin tones) that a held-out half must keep on one side; None: every image is its own
    groups: str | None = None

    def load(self, *args, **kwargs):
        return _call(self.loader, *args, **kwargs)

    def image_groups(self, data_dir=None) -> list[str] | None:
        return _call(self.groups, data_dir) if self.groups else None


def _call(named: str, *args, **kwargs):
    module, function = named.split(":")
    return getattr(import_module(f".{module}", __package__), function)(*args, **kwargs)


def _idx_here(name: str) -> Callable[[], bool]:
    return lambda: import_module(".idx", __package__).idx_here(name)


def _emoji_here() -> bool:
    return import_module(".emoji", __package__).noto_emoji_here()


SOURCES = {
    source.name: source
    for source in (
        DataSource(
            "mnist",
            "MNIST",
            "idx:load_mnist",
            credit="MNIST (LeCun, Cortes and Burges)",
            license="CC BY-SA 3.0",
            hub_license="cc-by-sa-3.0",
            hub_id="ylecun/mnist",
            channels=1,
            image_size=32,
            images=60_000,
            here=_idx_here("mnist"),
            test_split=True,
        ),
        DataSource(
            "fashion-mnist",
            "Fashion-MNIST",
            "idx:load_fashion_mnist",
            credit="Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando Research)",
            license="MIT",
            hub_license="mit",
            hub_id="zalando-datasets/fashion_mnist",
            channels=1,
            image_size=32,
            images=60_000,
            here=_idx_here("fashion-mnist"),
            in_train_tab=True,
            test_split=True,
        ),
        DataSource(
            "cifar10",
            "CIFAR-10",
            "cifar:load_cifar10",
            credit="CIFAR-10 (Krizhevsky 2009)",
            license="see https://www.cs.toronto.edu/~kriz/cifar.html",
            hub_id="uoft-cs/cifar10",
            channels=3,
            image_size=32,
            images=50_000,
            here=lambda: False,  # read from --data-dir or downloaded: never found by itself
            test_split=True,
        ),
        DataSource(
            "noto-emoji",
            "Noto emoji (colour)",
            "emoji:load_noto_emoji",
            credit="Noto Color Emoji (Google), from Debian's fonts-noto-color-emoji",  # the loader adds the versions
            license="Apache-2.0 (the images; the font is OFL-1.1)",
            hub_license="apache-2.0",
            channels=3,
            image_size=64,
            images=3_916,
            here=_emoji_here,
            in_train_tab=True,
            groups="emoji:base_sequences",
        ),
        DataSource(
            "folder",
            "a folder of images",
            "folder:load_folder",
            credit="a folder of the user's own images",
            license="the images' own licence",
            here=lambda: False,
        ),
    )
}
DATASETS = tuple(SOURCES)  # the names --dataset takes (and hf:OWNER/NAME)
HUB = DataSource(
    HUB_PREFIX + "OWNER/NAME",
    "a Hub dataset",
    "hub:load_hub_dataset",
    credit="the dataset card's",
    license="the dataset card's",
)


def hub_repo(name: object) -> str | None:
    """OWNER/NAME of a `hf:OWNER/NAME` dataset name, else None."""
    return name[len(HUB_PREFIX) :] if isinstance(name, str) and name.startswith(HUB_PREFIX) else None


def train_tab_sources() -> list[DataSource]:
    """The sources the app's Train tab offers: the same on every machine (they are part of its API); one whose files
    are not here is refused when chosen."""
    return [source for source in SOURCES.values() if source.in_train_tab]
