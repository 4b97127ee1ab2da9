"""Templates for ``rasoat plugin new`` (data, not code): the files of a new province plugin project.

``*.jinja2`` files are rendered with ``{= name =}`` placeholders (so Python and YAML braces stay as they
are); ``example_form.xlsx`` is copied with its form id, title and version set (core/commands/plugin_new.py).
"""
