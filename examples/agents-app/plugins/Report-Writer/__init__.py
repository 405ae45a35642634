# ruff: noqa: N999, RUF100  -- hyphenated, capitalised name is deliberate (image-name tests)
"""Report-Writer plugin package."""
