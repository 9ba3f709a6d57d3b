"""Pure, picklable functions that run in the worker processes of the pool.

Nothing here touches the event loop or the network (collection connectors are the one
exception: they are coroutines that the server runs as asyncio tasks).
"""
