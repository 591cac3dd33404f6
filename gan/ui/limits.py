"""The app's limits: what one request may ask for, how many jobs of each kind run at once and wait, the caps per
visitor, per address and in all (see fairness.py), and the upload size. The measured costs behind them are in
docs/app.md."""

from __future__ import annotations

from pathlib import Path

from .fairness import Caps

MAX_COUNT = 64
MAX_PROJECTION_STEPS = 1000  # a projection's steps at most (the time they take: docs/app.md)
MAX_RESTARTS = 8
MAX_FRAMES = 120
MAX_FPS = 50  # GIF frame delays are stored in 1/100 s and browsers slow anything under 20 ms down
MAX_TRUNCATION = 3
INFERENCE_WORKERS = 2  # light jobs at once: samples, the gallery, nearest images, scores, saliency, Explore's
UPLOAD_WORKERS = 1  # requests decoding uploaded images at once (Score and its saliency maps: up to 4 s of decoding)
ANIMATION_WORKERS = 1  # interpolations at once
PROJECTION_WORKERS = 1  # projections at once
TRAINING_WORKERS = 1  # the Train tab's runs at once (each a child process on one thread)
WORKERS = {
    "light": INFERENCE_WORKERS,
    "uploads": UPLOAD_WORKERS,
    "animation": ANIMATION_WORKERS,
    "projection": PROJECTION_WORKERS,
    "training": TRAINING_WORKERS,
}
QUEUE_SIZE = 64  # waiting requests of all kinds
JOB_CAPS = {  # queued or running; the totals leave most of QUEUE_SIZE to light jobs
    "uploads": Caps("requests with uploaded images", per_session=2, per_address=12, total=24),
    "animation": Caps("interpolations", per_session=3, per_address=12, total=24),
    "projection": Caps("projections", per_session=2, per_address=6, total=12),
    "training": Caps("training run(s)", per_session=1, per_address=2, total=6),  # up to 6 x 10 minutes of waiting
}
PNG_LEVEL = 1  # zlib level of output PNGs: the fastest; the 32 px samples are tiny either way
MAX_UPLOAD_BYTES = 32 * 2**20  # per file; a 4096x4096 RGB PNG (the pixel cap) is rarely larger
MAX_UPLOAD = f"{MAX_UPLOAD_BYTES >> 20}mb"  # the same, as launch(max_file_size=) takes it
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
