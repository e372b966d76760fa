"""Protocol-faithful local doubles of paid APIs, reached by the real client libraries through
their base-URL settings (never a mock of our own code)."""
