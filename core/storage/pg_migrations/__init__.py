"""PostgreSQL schema migrations: numbered ``NNNN_name.sql`` files, applied in order, each exactly once.

Add a change as a new file with the next number; never edit a file that has been released (databases
record the numbers they have applied in ``schema_version``).
"""
