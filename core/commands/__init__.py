"""Built-in command-line commands; each module is a default plugin using ``register_commands``."""
