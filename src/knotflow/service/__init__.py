"""Use cases between the API/CLI and the engine/store: catalog (import, publish) and runs."""
