"""Workflow definitions: Coze Studio canvases, their types and their value sources."""
