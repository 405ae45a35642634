"""What can go wrong with images, said so a person can fix it."""

from __future__ import annotations

from migrate.errors import UserError

SERVICES_HINT = 'for development and tests, `eval "$(bash scripts/test-services)"` starts one'
ORCHESTRATOR_SUBJECT = "the orchestrator image"


class DockerUnavailableError(UserError):
    """No Docker engine answers where DOCKER_HOST (or the default socket) points."""


class BaseImageMissingError(UserError):
    """`target.base_image` is not in the engine and could not be pulled."""


class ImageError(UserError):
    """One image could not be assembled, built, pushed or removed; the others go on.

    `subject` says which image (`plugin NAME`, `the orchestrator image`, or a reference);
    `log` holds the last lines of a failed build.
    """

    def __init__(
        self, subject: str, message: str, *, hint: str | None = None, log: str | None = None
    ) -> None:
        self.subject = subject
        self.log = log
        super().__init__(f"{subject}: {message}", hint=hint)


class PluginImageError(ImageError):
    """One plugin's image could not be built or pushed."""

    def __init__(
        self, plugin: str, message: str, *, hint: str | None = None, log: str | None = None
    ) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin}", message, hint=hint, log=log)


class ImagesFailedError(UserError):
    """Some images failed: the message lists each with its reason."""
