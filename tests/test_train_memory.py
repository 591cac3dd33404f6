"""The Train tab's memory cap on its training child (gan.training.runner.TrainingProcess, MEMORY_BYTES): real children,
the largest run the tab allows under the cap and one step that cannot fit in it."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from gan.training.runner import LIVE_EVERY, MEMORY_BYTES, TabRun, TrainingProcess
from gan.uploads import write_images


def test_the_largest_tab_run_trains_under_the_cap_and_a_step_beyond_it_fails_in_words(tmp_path):
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    largest = TabRun(width="large", batch_size=128, steps=2, data_dir=str(write_images(images, tmp_path / "images")))
    children = {}
    for name, extra in (("largest", []), ("over", ["--batch-size", "16384"])):  # 16384: 0.5 GiB a layer's output
        (tmp_path / name).mkdir()
        children[name] = TrainingProcess(tmp_path / name, largest.flags() + extra, LIVE_EVERY, MEMORY_BYTES)
    limits = Path(f"/proc/{children['largest'].process.pid}/limits").read_text()
    assert re.search(rf"Max data size\s+{MEMORY_BYTES}\s+{MEMORY_BYTES}\s+bytes", limits)

    assert children["largest"].wait(timeout=300) == 0, children["largest"].failure()
    assert (children["largest"].out / "model" / "config.json").is_file()
    assert children["over"].wait(timeout=300) != 0
    allowance = f"{MEMORY_BYTES / 2**30:.1f} GiB"
    assert children["over"].failure() == (
        f"the training ran out of its memory allowance ({allowance}): choose a smaller width or batch"
    )
