"""Avatar backends of the host: each a subpackage beside its siblings (`local/`: our drawn face)."""
