"""Base modules every layer may import: errors, settings, atomic writes. Nothing of the project is
imported here (checked by the import-layer contract in pyproject.toml)."""
