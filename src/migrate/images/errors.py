"""What can go wrong with images, said so a person can fix it."""

from __future__ import annotations

from migrate.errors import UserError

SERVICES_HINT = 'for development and tests, `eval "$(bash scripts/test-services)"` starts one'


class DockerUnavailableError(UserError):
    """No Docker engine answers where DOCKER_HOST (or the default socket) points."""


class BaseImageMissingError(UserError):
    """`target.base_image` is not in the engine and could not be pulled."""


class PluginImageError(UserError):
    """One plugin's image could not be built or pushed; the others go on."""

    def __init__(
        self, plugin: str, message: str, *, hint: str | None = None, log: str | None = None
    ) -> None:
        self.plugin = plugin
        self.log = log
        super().__init__(f"plugin {plugin}: {message}", hint=hint)


class ImagesFailedError(UserError):
    """Some plugins' images failed: the message lists each with its reason."""
