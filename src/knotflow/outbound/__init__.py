"""Requests knotflow makes to addresses a workflow chose: the address guard every outbound connection passes
(`guard`), and the HTTP client behind `RunServices.http` (`http`). The file fetcher (`knotflow.files.fetch`) uses
the same guard, so a URL reaches the same addresses whichever node reads it.
"""
