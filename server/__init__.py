"""The litestar app: OpenRosa endpoints for ODK Collect, the JSON API and the officers' pages."""
