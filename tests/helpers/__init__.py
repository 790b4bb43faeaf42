"""Helpers shared by the tests and benchmarks: composing configs, running the command line as a
user does, reading runs back, a private sshd, real MLflow and PostgreSQL servers. Fixtures live in
conftest.py and use these."""
