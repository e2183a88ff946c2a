"""The admin app with TwinPortal's admin site (``signin.admin_site``) as ``admin.site``.

Kept apart from the site's module: an app config is imported while the app registry loads, before
django-otp's admin module may be imported.
"""

from django.contrib.admin.apps import AdminConfig


class TwinPortalAdminConfig(AdminConfig):
    default_site = "signin.admin_site.TwinPortalAdminSite"
