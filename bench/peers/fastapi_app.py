"""The same endpoints with FastAPI, written the way most users would (contract §6 peer).

Chat and broadcast use the naive loop over every client, awaiting each send in
turn: simple, and it waits for the slowest client.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
rooms: dict[str, set[WebSocket]] = {}


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/ws_json")
async def ws_json(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            try:
                data = json.loads(text)
            except ValueError as exc:
                await websocket.send_json({"error": "invalid_json", "detail": str(exc)})
            else:
                await websocket.send_json({"message": "Received JSON data", "data": data})
    except WebSocketDisconnect:
        return


@app.websocket("/stream")
async def stream(websocket: WebSocket, count: int = 10_000) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
            for number in range(1, count + 1):
                await websocket.send_text(str(number))
    except WebSocketDisconnect:
        return


@app.websocket("/ws/chat/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    members = rooms.setdefault(room, set())
    members.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            for member in list(members):
                await member.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        members.discard(websocket)
