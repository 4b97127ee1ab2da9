"""Stylesheet and script of the officer pages, served under /static (a package so the wheel carries them)."""
