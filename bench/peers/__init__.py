"""The peers ``asgi_ws`` is measured against (contract §6), each small and written for the purpose.

- :mod:`.raw_asgi`: the server's floor, a minimal raw ASGI echo and stream;
- :mod:`.fastapi_app`: the same endpoints written with FastAPI the way most
  users would, with the naive ``for client in clients: await client.send_text(...)``
  loop for chat and broadcast;
- :mod:`.websockets_server`: the ``websockets`` library's own asyncio server,
  no ASGI layer at all.
"""
