"""The plugin host shipped INTO every plugin image (DESIGN 3.7). Standard library only.

It is copied into the image as the package `migrate_runtime`, so its modules
import each other relatively and import nothing from `migrate`.
"""
