"""Relay workers: viewers' peer connections in processes of their own (media.workers).

With `media.workers = N`, the main process keeps the publisher, the recording, the HLS
rendition, HTTP and the live room; N worker processes, each with its own event loop,
own the viewers' peer connections. Every packet of the publisher reaches each worker
once (`feed`: one datagram per packet per worker), and each worker forwards it to its
own viewers with the same Stream and DownTrack as the single-process relay.

- `feed`: the packet fan-out, main process to workers (Unix datagram sockets);
- `protocol`: the control channel (length-prefixed JSON on a Unix stream socket);
- `pool`: the supervisor in the main process (placement, admission counts, restarts);
- `worker`: the worker process (`python -m media.workers.worker`).
"""
