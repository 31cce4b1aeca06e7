"""The HTML report in a real browser: headless Chromium driven by selenium, offline.

Chromium and its driver are the Debian packages ``chromium`` and ``chromium-driver``
(``make browser`` installs them; ``make test`` runs it first). Other locations are given with
``DYNCONFORM_CHROMIUM`` and ``DYNCONFORM_CHROMEDRIVER``. Without them this test fails, it does
not skip. Screenshots are written to ``test-artifacts/`` at the repository root (git-ignored;
CI uploads the directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from html_samples import HOSTILE_MODEL, conformance_report, stability_report

from dynconform.reports import _html as html_mod
from dynconform.reports import write_html

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path(os.environ.get("DYNCONFORM_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("DYNCONFORM_CHROMEDRIVER", "/usr/bin/chromedriver"))
#: offline: no first-run, sync, component or background fetches that would wait on a network
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
#: runs before any script of the page: records dialogs instead of opening them
TRAP = """
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (msg) => { window.__dialogs.push(name + ":" + String(msg)); };
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"headless browser test needs {' and '.join(missing)}: run 'make browser' "
            "(apt-get install chromium chromium-driver) or set DYNCONFORM_CHROMIUM and "
            "DYNCONFORM_CHROMEDRIVER",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(20)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    try:
        yield browser
    finally:
        browser.quit()


def _open(driver: Any, path: Path) -> None:
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def _visible_rows(driver: Any) -> int:
    count: int = driver.execute_script(
        "return [...document.querySelectorAll('#rows tbody tr')]"
        ".filter(r => r.offsetParent !== null).length"
    )
    shown = driver.find_element("id", "rows-shown").text
    assert shown == str(count)
    return count


def _toggle(driver: Any, dim: str, value: str) -> None:
    """Click the checkbox of ``value`` in the ``dim`` filter, found by its label."""
    labels = driver.find_elements("css selector", f"#filter-{dim} label")
    (label,) = [lb for lb in labels if lb.text.rsplit(" (", 1)[0].strip() == value]
    label.find_element("css selector", "input").click()


def _set_all(driver: Any, dim: str, on: bool) -> None:
    selector = f"button[data-dim='{dim}'][data-set='{'all' if on else 'none'}']"
    driver.find_element("css selector", selector).click()


def _injected(driver: Any) -> tuple[list[str], Any]:
    dialogs, pwned = driver.execute_script("return [window.__dialogs, window.__pwned]")
    return dialogs, pwned


def _screenshot(driver: Any, name: str) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 40, 8000))
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


def _severe(driver: Any) -> list[str]:
    """Console errors (a CSP refusal of the page's own script or style would be one)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_conformance_report_in_chromium(driver: Any, tmp_path: Path) -> None:
    report = conformance_report()
    page = write_html(report, tmp_path / "report.html")
    _open(driver, page)

    verdict = driver.find_element("id", "verdict")
    assert verdict.is_displayed()
    assert verdict.text.startswith("FAILED")
    assert driver.execute_script("return document.documentElement.classList.contains('js')")
    assert _injected(driver) == ([], None)
    assert HOSTILE_MODEL in driver.find_element("tag name", "body").text
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert _severe(driver) == []
    shot = _screenshot(driver, "html-report-conformance.png")
    assert shot.stat().st_size > 10_000

    checks = report.checks
    assert _visible_rows(driver) == len(checks)
    _toggle(driver, "status", "passed")
    assert _visible_rows(driver) == sum(c.status != "passed" for c in checks) == 5
    _set_all(driver, "profile", on=False)
    assert _visible_rows(driver) == 0
    assert driver.find_element("id", "rows-empty").is_displayed()
    _toggle(driver, "profile", "kv-routing")
    expected = sum(c.status != "passed" and "kv-routing" in c.profiles for c in checks)
    assert _visible_rows(driver) == expected == 2
    assert not driver.find_element("id", "rows-empty").is_displayed()
    _toggle(driver, "level", "extended")
    assert _visible_rows(driver) == 1
    driver.find_element("css selector", "button[data-set='all']:not([data-dim])").click()
    assert _visible_rows(driver) == len(checks)
    assert _injected(driver) == ([], None)


def test_stability_report_in_chromium(driver: Any, tmp_path: Path) -> None:
    report = stability_report()
    page = write_html(report, tmp_path / "stability.html")
    _open(driver, page)

    verdict = driver.find_element("id", "verdict")
    assert verdict.is_displayed()
    assert verdict.text.startswith("FAIL")
    assert _injected(driver) == ([], None)
    assert _severe(driver) == []
    findings = report.findings
    assert _visible_rows(driver) == len(findings) == 9
    _toggle(driver, "tier", "stable")
    assert _visible_rows(driver) == sum(f.tier != "stable" for f in findings) == 4
    _set_all(driver, "verdict", on=False)
    _toggle(driver, "verdict", "violation")
    _set_all(driver, "tier", on=True)
    assert _visible_rows(driver) == 1
    _screenshot(driver, "html-report-stability.png")


def test_the_browser_check_sees_an_injection(
    driver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutants: without escaping the CSP alone stops the payloads; without escaping and with
    inline scripts allowed, the check above sees them run."""
    monkeypatch.setattr(html_mod, "_e", str)
    unescaped = write_html(conformance_report(), tmp_path / "unescaped.html")
    _open(driver, unescaped)
    assert _injected(driver) == ([], None)

    monkeypatch.setattr(html_mod, "_csp_hash", lambda text: "'unsafe-inline'")
    open_page = write_html(conformance_report(), tmp_path / "open.html")
    _open(driver, open_page)
    dialogs, pwned = _injected(driver)
    assert "alert:1" in dialogs
    assert pwned is not None
