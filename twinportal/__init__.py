"""TwinPortal Django project: settings, URLs, WSGI entry point and the Celery application."""

from twinportal.celery import app as celery_app

__all__ = ["celery_app"]
