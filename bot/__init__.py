"""Kaika's application layer: the Discord bot, the command line and the wiring of pipeline and storage."""
