"""Protocol-faithful local doubles of paid APIs, reached by the real clients via base URLs."""
