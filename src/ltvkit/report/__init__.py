"""The single-file HTML report: rendering, charts, templates and locales (en, fr)."""
