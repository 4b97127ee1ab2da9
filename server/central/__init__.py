"""ODK Central's REST API subset (what pyodk uses) and OData, over rasoat's store and rules.

``rest`` holds sessions, projects, forms and drafts, submissions, reviews, comments and attachments;
``odata`` the per-form OData service; ``entities`` the entity lists (REST and OData, read and write);
``auth`` who is calling; ``problems`` every error in Central's JSON shape; ``routes`` all of them for the
app. See docs/api.md. The package imports none of them, so a module importing ``problems`` loads no routes.
"""
