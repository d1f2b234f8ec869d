#!/usr/bin/env python3
"""Writes configs/sample.pcap: 32 Ethernet/IPv4/UDP frames for the pcap port example.

Standard library only (struct). Deterministic output: fixed addresses from the benchmarking
range 198.18.0.0/15, fixed timestamps, so re-running it reproduces the committed file.

    python3 configs/make-sample-pcap.py [OUTPUT]
"""
import os
import struct
import sys

FRAMES = 32
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")
SRC_IP = bytes([198, 18, 0, 1])
DST_IP = bytes([198, 18, 0, 2])


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(i: int) -> bytes:
    payload = f"ferroplane sample frame {i:02d} ".encode().ljust(18 + (i % 4) * 16, b".")
    sport, dport = 10000 + i, 9
    udp_len = 8 + len(payload)
    pseudo = SRC_IP + DST_IP + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, i, 0x4000, 64, 17, 0, SRC_IP, DST_IP)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return DST_MAC + SRC_MAC + struct.pack("!H", 0x0800) + ip + udp


def main() -> None:
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.pcap")
    out = sys.argv[1] if len(sys.argv) > 1 else default
    # Global header: magic, version 2.4, tz 0, sigfigs 0, snaplen 65535, linktype 1 (Ethernet).
    data = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(FRAMES):
        f = frame(i)
        ts_sec, ts_usec = 1_700_000_000 + i // 10, (i % 10) * 100_000
        data.append(struct.pack("<IIII", ts_sec, ts_usec, len(f), len(f)) + f)
    with open(out, "wb") as fh:
        fh.write(b"".join(data))
    print(f"wrote {FRAMES} frames to {out}")


if __name__ == "__main__":
    main()
