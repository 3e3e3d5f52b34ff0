"""Kaika's service layer: jobs (admit → record → run → store → report), settings, user errors, wiring.

The front ends — the Discord bot (`bot/`), the `kaika` command line (`cli/`) and the web companion —
turn their input into calls here and render what comes back; nothing here knows Discord or HTTP.
"""
