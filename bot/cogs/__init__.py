"""The bot's commands, grouped by who uses them."""
