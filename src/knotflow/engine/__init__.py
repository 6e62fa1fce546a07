"""Runtime: compile a canvas into a plan once, then run it on asyncio."""
