#!/usr/bin/env python3
"""A third TTFT stand-in for BenchmarkLoadgenFidelityGPULoad: SGLang's native
/generate stream served by Python's asyncio on one event loop (as uvicorn
serves SGLang), written apart from the Go stand-ins so that the load
generator's fidelity is not judged only against servers sharing its HTTP stack.

Every request's clock starts when its handler has the parsed body (where
SGLang's tokenizer manager starts its own); its first token is written
STANDIN_TTFT_MS later, then one token every STANDIN_ITL_MS. GET
/fake/timings?reset=1 returns each request's rid, arrival and first-token
write (Unix ns) and forgets them. Other GETs answer {} (health, info, probes).
Standard library only. Usage: fidelity_standin.py --host H --port P.
"""

import asyncio
import json
import os
import sys
import time

TTFT = float(os.environ.get("STANDIN_TTFT_MS", "50")) / 1000
ITL = float(os.environ.get("STANDIN_ITL_MS", "30")) / 1000
timings = []


def arg(name, default):
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return method, target, body


def plain(writer, status, body):
    writer.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (status, len(body), body))


async def generate(writer, body):
    req = json.loads(body)
    arrival = time.time_ns()
    rid = req.get("rid", "")
    n = req.get("sampling_params", {}).get("max_new_tokens", 16)
    prompt = len(req.get("input_ids") or [])
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(TTFT)
    first = 0
    for done in range(1, n + 1):
        if done > 1:
            await asyncio.sleep(ITL)
        finish = '{"type":"length","length":%d}' % n if done == n else "null"
        data = ('data: {"text":"%s","meta_info":{"id":"r","prompt_tokens":%d,"completion_tokens":%d,"finish_reason":%s}}\n\n'
                % ("x" * done, prompt, done, finish)).encode()
        writer.write(chunk(data))
        if not first:
            first = time.time_ns()
        await writer.drain()
    writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()
    if rid:
        timings.append({"rid": rid, "arrival_unix_nano": arrival, "first_token_unix_nano": first})


async def serve(reader, writer):
    try:
        while True:
            method, target, body = await read_request(reader)
            if method == "POST" and target.startswith("/generate"):
                await generate(writer, body)
            elif target.startswith("/fake/timings"):
                out = json.dumps(timings).encode()
                if "reset=1" in target:
                    timings.clear()
                plain(writer, 200, out)
            elif target.startswith("/get_model_info") or target.startswith("/model_info"):
                plain(writer, 200, b'{"model_path":"standin","is_generation":true}')
            else:
                plain(writer, 200, b"{}")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, arg("--host", "127.0.0.1"), int(arg("--port", "30000")), backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
