"""Helpers for the page tests: a 1366x768 context that records CSP violations, axe-core served to
the test browser only, and screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.conftest import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "var" / "browser-tools" / "node_modules" / "axe-core" / "axe.min.js"
#: axe is fetched from this same-origin address, which only the test browser's route answers.
AXE_PATH = "/__test-only__/axe.min.js"

# Recorded before any page script runs (Playwright's init scripts are not subject to the CSP).
_RECORD_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def new_page(browser: Any, base_url: str) -> Any:
    if not AXE.exists():
        raise RuntimeError(f"axe-core is missing at {AXE}: run `make browser`")
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="en-GB", timezone_id="UTC"
    )
    context.add_init_script(_RECORD_CSP)
    context.route(
        f"{base_url}{AXE_PATH}",
        lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"),
    )
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,  # type: ignore[attr-defined]
    )
    return page


def csp_violations(page: Any) -> list[str]:
    recorded = page.evaluate("window.__cspViolations || []")
    console = [m for m in page.console_errors if "Content Security Policy" in m]
    return [*recorded, *console]


def axe_serious(page: Any, base_url: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(url=f"{base_url}{AXE_PATH}")
    violations: list[dict[str, Any]] = page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))"""
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def check_page(page: Any, base_url: str, name: str) -> None:
    """No CSP violation, no serious accessibility problem, and a screenshot."""
    assert csp_violations(page) == [], name
    problems = axe_serious(page, base_url)
    assert problems == [], f"{name}: {problems}"
    shot(page, name)
