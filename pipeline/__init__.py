"""Kaika's generation engine: requests in, images out. Knows nothing of Discord or the database."""
