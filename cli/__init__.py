"""The `kaika` command: its own commands (`imagine`, …) and the launcher of the bot and the workers."""
