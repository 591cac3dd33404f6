"""The app in a real browser (Debian's Chromium via playwright): click through every tab, as a visitor would.

Screenshots go to test-artifacts/. Without Chromium or playwright the tests skip with the reason,
except in CI (CI=true), where they must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT
from images_for_tests import write_test_images

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def page(app):
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app.url)
        page.get_by_role("button", name="Generate").wait_for(timeout=30_000)
        yield page
        browser.close()


def test_sample_tab_shows_a_grid(page):
    page.get_by_role("button", name="Generate").click()
    grid = page.locator("img[src*='.png']").first
    grid.wait_for(timeout=30_000)
    assert grid.evaluate("img => img.naturalWidth") >= 400  # upscaled so a 32 px sample is visible
    page.screenshot(path=ARTIFACTS / "sample.png", full_page=True)


def test_random_seed_changes_the_seed(page):
    seed = page.get_by_label("Seed", exact=True)
    before = seed.input_value()
    for _ in range(3):  # a random draw equal to the old seed is possible, three in a row is not
        page.get_by_role("button", name="Random seed").click()
        page.wait_for_timeout(500)
        if seed.input_value() != before:
            break
    assert seed.input_value() != before


def test_interpolate_tab_shows_an_animation_and_frames(page):
    page.get_by_role("tab", name="Interpolate").click()
    page.get_by_role("button", name="Interpolate").click()
    page.locator("img[src*='.gif']").first.wait_for(timeout=30_000)
    assert page.locator("img[src*='.png']").count() >= 1
    page.screenshot(path=ARTIFACTS / "interpolate.png", full_page=True)


def test_score_tab_scores_an_upload_and_names_a_bad_one(page, tmp_path):
    files = write_test_images(tmp_path)
    page.get_by_role("tab", name="Score").click()
    page.locator("input[type='file']").first.set_input_files([str(files["rgb.jpg"]), str(files["notes.txt"])])
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Score").click()
    page.get_by_text("notes.txt: not an image").wait_for(timeout=30_000)
    assert page.get_by_role("cell", name="rgb.jpg").count() >= 1
    assert page.get_by_text("not a calibrated detector").count() == 1
    page.screenshot(path=ARTIFACTS / "score.png", full_page=True)
