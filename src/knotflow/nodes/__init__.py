"""Node types, one module each, registered by their canvas type id (see `base.register`)."""
