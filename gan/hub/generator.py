"""The generator as a huggingface_hub PyTorchModelHubMixin model."""

from __future__ import annotations

from huggingface_hub import PyTorchModelHubMixin

from ..models import Generator, ModelConfig


class HubGenerator(
    Generator,
    PyTorchModelHubMixin,
    library_name="pytorch",
    pipeline_tag="unconditional-image-generation",
    tags=["gan", "dcgan", "dcgan-studio"],
):
    """The generator with `PyTorchModelHubMixin`: `HubGenerator.from_pretrained("user/name")` reads config.json
    (the ModelConfig fields; the metadata is ignored) and model.safetensors like any mixin model."""

    def __init__(self, config: ModelConfig | dict):
        super().__init__(config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config))
