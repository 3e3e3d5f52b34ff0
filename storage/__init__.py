"""Kaika's records: users, jobs, images and who owns them. Knows nothing of Discord or torch."""
