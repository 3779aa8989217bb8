from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users and their roles, API tokens (hashed, expiring, revocable) and login throttling."""

    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from apps.accounts import auth  # noqa: F401  (registers the OpenAPI scheme of the token class)
        from apps.accounts.login import ThrottledAdminAuthenticationForm

        admin.site.login_form = ThrottledAdminAuthenticationForm
