"""``manage.py seed_demo``: the demo cohort and accounts (idempotent), then the logins to use."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patients.demo import demo_seed
from twins.demo import demo_twins


class Command(BaseCommand):
    help = "Seed the synthetic demo cohort, its clinicians, care teams and a data manager; print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=240)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        logins = demo_seed(
            patients=options["patients"], seed=options["seed"], progress=self.stdout.write
        )
        demo_twins(progress=self.stdout.write)
        width = max(len(login.username) for login in logins)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("TwinPortal demo is ready at http://127.0.0.1:8000/"))
        self.stdout.write("Sign in with (synthetic data only):")
        for login in logins:
            self.stdout.write(
                f"  username {login.username:<{width}}  password {login.password}   {login.description}"
            )
            if login.totp_key:
                self.stdout.write(
                    f"    second factor: add the key {login.totp_key} to an authenticator app "
                    f"(time-based, 6 digits, 30 s), or import {login.totp_uri}"
                )
        self.stdout.write("")
