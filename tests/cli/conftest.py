"""The job commands as a user runs them: real storage in a temporary DATA_DIR, the tiny model on CPU.

The `kaika` fixture (run a command in this process) and the DATA_DIR fixtures are in tests/fixtures/cli.py.
"""
