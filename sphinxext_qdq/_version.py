"""The package version, in one place (read by setup.cfg, the extension and the CLI)."""

__version__ = "0.1.0"
