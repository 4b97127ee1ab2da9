"""Core's own behaviour, shipped as default plugins through the public hooks."""
