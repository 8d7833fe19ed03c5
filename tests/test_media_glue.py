"""The private aiortc/aioice APIs the relay relies on (media/aiortc_glue.py).

aiortc is pinned; these tests fail loudly if an upgrade renames or removes any of
them, before the media tests fail in more puzzling ways.
"""

from __future__ import annotations

import inspect

import aioice.ice
import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport

from media import aiortc_glue as glue


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == "1.16.0"
    # FastPath.send_packet uses pylibsrtp's insides too (aiortc's SRTP, pinned by the lock).
    import pylibsrtp

    assert pylibsrtp.__version__ == "1.0.0"


async def test_receiver_private_state_exists() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        receiver = transceiver.receiver
        for name in (
            "codecs",
            "rtx_ssrc",
            "started",
            "rtcp_task",
            "remote_streams",
            "nack_generator",
            "remote_bitrate_estimator",
            "rtcp_ssrc",
            "decoder_thread",
        ):
            assert hasattr(receiver, glue._RECEIVER + name), name
        for method in (
            "_run_rtcp",
            "_send_rtcp",
            "_send_rtcp_nack",
            "_send_rtcp_pli",
            "_handle_rtcp_packet",
            "_set_rtcp_ssrc",
        ):
            assert callable(getattr(RTCRtpReceiver, method)), method
        assert hasattr(transceiver, "_RTCRtpTransceiver__receiver")
        assert hasattr(transceiver, "_RTCRtpTransceiver__sender")
        swapped = glue.swap_receiver(transceiver)
        assert transceiver.receiver is swapped and isinstance(swapped, glue.ForwardingReceiver)
        sender = glue.swap_sender(transceiver)
        assert transceiver.sender is sender and sender._ssrc and sender._stream_id
    finally:
        await pc.close()


def test_transport_internals_exist() -> None:
    for name in (
        "_register_rtp_receiver",
        "_register_rtp_sender",
        "_unregister_rtp_sender",
        "_send_rtp",
    ):
        assert callable(getattr(RTCDtlsTransport, name)), name
    source = inspect.getsource(RTCDtlsTransport)
    assert "self._tx_srtp" in source and "self._state" in source
    assert "_nominated" in inspect.getsource(aioice.ice.Connection)
    assert "get_host_addresses(" in inspect.getsource(aioice.ice.Connection)
    assert callable(aioice.ice.get_host_addresses)
    import asyncio.selector_events

    assert "self._sock" in inspect.getsource(asyncio.selector_events._SelectorTransport)


def test_kernel_arrival_internals_exist() -> None:
    """KernelArrivals hooks aioice's queue of received datagrams and asyncio's datagram
    read, and relies on aiortc handing a datagram on before it takes the next."""
    import asyncio.selector_events

    connection = inspect.getsource(aioice.ice.Connection)
    assert "self._queue: asyncio.Queue" in connection
    assert "self._queue.put_nowait((data, component))" in connection
    queue = inspect.getsource(asyncio.Queue)
    assert "self._put(item)" in queue and "item = self._get()" in queue
    datagram = asyncio.selector_events._SelectorDatagramTransport
    read = inspect.getsource(datagram._read_ready)
    assert "self._sock.recvfrom(self.max_size)" in read
    assert "self._protocol.datagram_received(data, addr)" in read
    assert "self._add_reader" in inspect.getsource(datagram.__init__)
    transport = inspect.getsource(asyncio.selector_events._SelectorTransport)
    assert "self._sock_fd" in transport and "self._conn_lost" in transport
    # Nothing awaited between taking a datagram and handing its RTP to the receiver.
    recv_next = inspect.getsource(RTCDtlsTransport._recv_next)
    taken = recv_next.rindex("data = await self.transport._recv()")
    read = recv_next[taken : recv_next.index("first_byte = data[0]")]
    assert read.count("await") == 1, read
    srtp = recv_next[
        recv_next.index("arrival_time_ms = clock.current_ms()") : recv_next.index(
            "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)"
        )
    ]
    awaited = [line.strip() for line in srtp.splitlines() if "await" in line]
    assert awaited == ["await self._handle_rtcp_data(data)"], srtp  # RTCP's branch


def test_host_addresses_setting() -> None:
    glue.set_host_addresses(["127.0.0.1", "::1"])
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        glue.set_host_addresses([])
    assert aioice.ice.get_host_addresses is glue._original_get_host_addresses


def test_fast_path_protects_in_the_session_buffer() -> None:
    """FastPath.send_packet writes the packet into pylibsrtp's own buffer (`_cdata`,
    `_buffer`), patches it, protects it with `lib.srtp_protect` on `_srtp[0]` and sends
    it from there: what the viewer unprotects is the template with this viewer's
    sequence number, timestamp and SSRC."""
    import os
    import socket
    from types import SimpleNamespace

    from aiortc.rtcdtlstransport import State
    from aiortc.rtp import RtpPacket
    from pylibsrtp import Policy, Session

    key = os.urandom(30)
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    viewer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        viewer.bind(("127.0.0.1", 0))
        viewer.settimeout(5)
        relay.bind(("127.0.0.1", 0))
        relay.setblocking(False)
        pair = SimpleNamespace(
            protocol=SimpleNamespace(transport=SimpleNamespace(_sock=relay)),
            remote_addr=viewer.getsockname(),
        )
        dtls = SimpleNamespace(
            _state=State.CONNECTED,
            _tx_srtp=tx,
            transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})),
        )
        path = glue.FastPath(dtls)  # type: ignore[arg-type]
        payload = os.urandom(1200)
        template = bytes(RtpPacket(payload_type=102, marker=1, payload=payload).serialize())
        for seq in (65534, 65535, 0):
            assert path.send_packet(template, seq, seq * 3000, 0xC0FFEE) == glue.SENT
            got = RtpPacket.parse(rx.unprotect(viewer.recv(2048)))
            assert (got.sequence_number, got.timestamp, got.ssrc) == (seq, seq * 3000, 0xC0FFEE)
            assert got.payload == payload and got.payload_type == 102 and got.marker == 1
        # The session's other users (aiortc's RTCP) still work on the shared buffer.
        assert rx.unprotect_rtcp(tx.protect_rtcp(b"\x80\xc9\x00\x01" + b"\x00" * 4))
        dtls._state = State.CLOSED
        assert path.send_packet(template, 1, 1, 1) == glue.CLOSED
    finally:
        viewer.close()
        relay.close()


async def test_receiver_forwards_repairs_but_not_resends_nobody_asked_for() -> None:
    """A browser pads its RTX stream with resends of packets already received while it
    probes for room: those stay out of the relay (duplicates to every viewer of the
    layer, and a layer bitrate several times its own); a repair of a lost packet goes
    on."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket, wrap_rtx

    pc = RTCPeerConnection()
    try:
        receiver = glue.swap_receiver(pc.addTransceiver("video", direction="recvonly"))
        receiver.codecs[96] = RTCRtpCodecParameters("video/H264", 90000, payloadType=96)
        receiver.codecs[97] = RTCRtpCodecParameters(
            "video/rtx", 90000, payloadType=97, parameters={"apt": 96}
        )
        receiver._private("rtx_ssrc")[2] = 1
        got: list[int] = []
        receiver.on_rtp = lambda _r, packet, _t: got.append(packet.sequence_number)

        def media(seq: int) -> RtpPacket:
            return RtpPacket(payload_type=96, sequence_number=seq, ssrc=1, payload=b"\x41" * 50)

        for seq in (1, 2, 3, 5):  # 4 is lost
            await receiver._handle_rtp_packet(media(seq), 0)
        rtx_seq = 100
        for seq in (2, 3, 4, 4):  # padding, padding, the repair, the repair again
            packet = wrap_rtx(media(seq), payload_type=97, sequence_number=rtx_seq, ssrc=2)
            rtx_seq += 1
            await receiver._handle_rtp_packet(packet, 0)
        assert got == [1, 2, 3, 5, 4]
    finally:
        await pc.close()
