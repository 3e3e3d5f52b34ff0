"""The web companion: gallery, region editor, admin dashboard, imagine in the browser, health and metrics."""
