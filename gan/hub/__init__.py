"""The Hugging Face Hub: publish an export as a model repo (`publish`, with its model card in `model_card`), load a
model from a repo id (`load`), deploy the app as a Space (`space`), and the errors of all three as one actionable line
(`errors`). `generator` holds `HubGenerator`, the generator with huggingface_hub's PyTorchModelHubMixin.

Naming on the command line: `--hub-model-id` where something is published, `--repo-id`/`--revision` where a model
is read, `--checkpoint` for a local export folder. The token comes from `--hub-token`, `HF_TOKEN` or the stored
`hf auth login`; it is never printed, logged or written anywhere (error messages are scrubbed of it too). Nothing
here deletes or changes local files (but `load.prune_cache`, in the Hub cache).
"""
