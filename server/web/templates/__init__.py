"""Jinja2 templates of the officer pages (a package so the wheel carries them)."""
