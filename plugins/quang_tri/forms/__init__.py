"""Data: this plugin's XLSForms and their placeholder media."""
