"""Jinja2 templates (a package so the wheel carries them as package data)."""
