"""Sign in to a running TwinPortal as a user and save screenshots of pages (for the README).

Usage: python scripts/screenshot.py --base http://127.0.0.1:8000 --user amelia.hart --password ... \
       --out docs/img/patient-list.png [--path /]
"""

from __future__ import annotations

import argparse
import shutil

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--out", required=True)
    parser.add_argument("--login-out", help="Also save the sign-in page here")
    args = parser.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{args.base}/accounts/login/")
        if args.login_out:
            page.screenshot(path=args.login_out)
        page.fill("#id_username", args.user)
        page.fill("#id_password", args.password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{args.base}{args.path}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=args.out)
        browser.close()


if __name__ == "__main__":
    main()
