//! The kernel interface of the `af_packet` driver: socket calls, interface ioctls, the mmap'd
//! ring region, and the byte layout of the ring headers.
//!
//! Ring headers are read and written at fixed byte offsets (with unaligned loads) rather than
//! through references to `libc` structs: the memory is shared with the kernel, and the offsets
//! are checked against `libc`'s definitions at compile time below.

use std::ffi::CString;
use std::io;
use std::mem::{self, offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

use libc::{c_int, c_void};

// `enum tpacket_versions` from `linux/if_packet.h`. libc models it as a Rust enum whose shape
// has changed between releases, so the two values used here are spelled out.
/// `TPACKET_V2`.
pub(super) const TPACKET_V2: c_int = 1;
/// `TPACKET_V3`.
pub(super) const TPACKET_V3: c_int = 2;

// `struct tpacket_block_desc` (TPACKET_V3 rx block header): `version`, `offset_to_priv`, then
// `struct tpacket_hdr_v1` at offset 8.
/// `hdr.bh1.block_status`.
pub(super) const BD_STATUS: usize = 8;
/// `hdr.bh1.num_pkts`.
pub(super) const BD_NUM_PKTS: usize = 12;
/// `hdr.bh1.offset_to_first_pkt`.
pub(super) const BD_FIRST: usize = 16;
/// Size of the block header: no frame can start before it.
pub(super) const BD_SIZE: usize = 48;

// `struct tpacket3_hdr` (one received frame in a V3 block).
/// `tp_next_offset`: from this header to the next one in the block.
pub(super) const H3_NEXT: usize = 0;
/// `tp_snaplen`: bytes of the frame present in the ring.
pub(super) const H3_SNAPLEN: usize = 12;
/// `tp_len`: bytes of the frame on the wire.
pub(super) const H3_LEN: usize = 16;
/// `tp_status`.
pub(super) const H3_STATUS: usize = 20;
/// `tp_mac`: from this header to the first byte of the frame.
pub(super) const H3_MAC: usize = 24;
/// `hv1.tp_rxhash`.
pub(super) const H3_RXHASH: usize = 28;
/// `hv1.tp_vlan_tci`.
pub(super) const H3_VLAN_TCI: usize = 32;
/// `hv1.tp_vlan_tpid`.
pub(super) const H3_VLAN_TPID: usize = 36;
/// Size of the frame header.
pub(super) const H3_SIZE: usize = 48;

// `struct tpacket2_hdr` (one frame of the V2 tx ring).
/// `tp_status`.
pub(super) const H2_STATUS: usize = 0;
/// `tp_len`.
pub(super) const H2_LEN: usize = 4;
/// `tp_snaplen`.
pub(super) const H2_SNAPLEN: usize = 8;
/// Where the kernel takes a tx frame's bytes from when `PACKET_TX_HAS_OFF` is off:
/// `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`.
pub(super) const TX_DATA_OFFSET: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();

// The offsets above must match the C layout (as `libc` declares it).
const _: () = {
    assert!(offset_of!(libc::tpacket_block_desc, hdr) == 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, block_status) == BD_STATUS - 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, num_pkts) == BD_NUM_PKTS - 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt) == BD_FIRST - 8);
    assert!(size_of::<libc::tpacket_block_desc>() == BD_SIZE);
    assert!(offset_of!(libc::tpacket3_hdr, tp_next_offset) == H3_NEXT);
    assert!(offset_of!(libc::tpacket3_hdr, tp_snaplen) == H3_SNAPLEN);
    assert!(offset_of!(libc::tpacket3_hdr, tp_len) == H3_LEN);
    assert!(offset_of!(libc::tpacket3_hdr, tp_status) == H3_STATUS);
    assert!(offset_of!(libc::tpacket3_hdr, tp_mac) == H3_MAC);
    assert!(offset_of!(libc::tpacket3_hdr, hv1) == H3_RXHASH);
    assert!(offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci) == H3_VLAN_TCI - H3_RXHASH);
    assert!(offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid) == H3_VLAN_TPID - H3_RXHASH);
    assert!(size_of::<libc::tpacket3_hdr>() == H3_SIZE);
    assert!(offset_of!(libc::tpacket2_hdr, tp_status) == H2_STATUS);
    assert!(offset_of!(libc::tpacket2_hdr, tp_len) == H2_LEN);
    assert!(offset_of!(libc::tpacket2_hdr, tp_snaplen) == H2_SNAPLEN);
    assert!(TX_DATA_OFFSET == 32);
};

/// `ETHTOOL_GSET` (linux/ethtool.h): read link settings into a `struct ethtool_cmd`. Not in
/// libc; deprecated in favour of `ETHTOOL_GLINKSETTINGS` but still answered by every driver.
const ETHTOOL_GSET: u32 = 1;
/// `DUPLEX_HALF`.
const DUPLEX_HALF: u8 = 0;
/// `DUPLEX_FULL`.
const DUPLEX_FULL: u8 = 1;
/// `ARPHRD_ETHER` (linux/if_arp.h).
pub(super) const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_LOOPBACK`: `lo` also carries (all-zero-address) Ethernet headers.
pub(super) const ARPHRD_LOOPBACK: u16 = 772;

/// `struct ethtool_cmd` from linux/ethtool.h (not in libc).
#[repr(C)]
#[derive(Default)]
struct EthtoolCmd {
    cmd: u32,
    supported: u32,
    advertising: u32,
    speed: u16,
    duplex: u8,
    port: u8,
    phy_address: u8,
    transceiver: u8,
    autoneg: u8,
    mdio_support: u8,
    maxtxpkt: u32,
    maxrxpkt: u32,
    speed_hi: u16,
    eth_tp_mdix: u8,
    eth_tp_mdix_ctrl: u8,
    lp_advertising: u32,
    reserved: [u32; 2],
}

const _: () = assert!(size_of::<EthtoolCmd>() == 44);

/// The system page size.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// A new `AF_PACKET` raw socket with protocol 0: it receives nothing until bound with a
/// protocol, so no frame reaches it before its ring and options are in place.
pub(super) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor the kernel just created for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, level, name, val)`.
pub(super) fn set_opt<T>(fd: BorrowedFd<'_>, level: c_int, name: c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast::<c_void>(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt(fd, level, name)` into a `T` that starts as `init`.
pub(super) fn get_opt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    init: T,
) -> io::Result<T> {
    let mut val = init;
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a live `T` and `len` its size; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut val as *mut T).cast::<c_void>(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(val)
    }
}

/// Binds a packet socket to interface `ifindex` for `protocol` (host order; 0 binds the
/// device for transmit without registering for any received frame).
pub(super) fn bind_ll(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex as c_int;
    // SAFETY: `sa` is a valid sockaddr_ll of the length passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Receive statistics of a packet socket since the last call (`PACKET_STATISTICS` resets the
/// kernel's counters on every read): `(drops, queue freezes)`.
pub(super) fn packet_stats(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    // SAFETY: tpacket_stats_v3 is plain old data; all-zero is a valid value.
    let init: libc::tpacket_stats_v3 = unsafe { mem::zeroed() };
    let s = get_opt(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS, init)?;
    Ok((s.tp_drops, s.tp_freeze_q_cnt))
}

/// Asks the kernel to send every tx-ring frame marked `TP_STATUS_SEND_REQUEST`, without
/// waiting for anything: `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`.
#[inline]
pub(super) fn kick(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length send with no buffer and no address is valid for a socket with a
    // tx ring; the kernel reads the frames from the ring.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            ptr::null(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The index of interface `name`, `None` when it does not exist (in this thread's network
/// namespace).
pub(super) fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: ifreq is plain old data (a name and a union of plain fields); all-zero is valid.
    let mut r: libc::ifreq = unsafe { mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    Ok(r)
}

fn ioctl_ifreq(fd: BorrowedFd<'_>, req: libc::c_ulong, r: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request used here reads and writes only the `ifreq` passed (or, for
    // SIOCETHTOOL, the buffer its `ifru_data` points to, which the caller keeps alive).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, r as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The hardware type (`ARPHRD_*`) and address of interface `name`.
pub(super) fn if_hwaddr(fd: BorrowedFd<'_>, name: &str) -> io::Result<(u16, [u8; 6])> {
    let mut r = ifreq(name)?;
    ioctl_ifreq(fd, libc::SIOCGIFHWADDR, &mut r)?;
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let sa = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok((sa.sa_family, mac))
}

/// The MTU of interface `name`.
pub(super) fn if_mtu(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut r = ifreq(name)?;
    ioctl_ifreq(fd, libc::SIOCGIFMTU, &mut r)?;
    // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_mtu }.max(0) as u32)
}

/// The `IFF_*` flags of interface `name`.
pub(super) fn if_flags(fd: BorrowedFd<'_>, name: &str) -> io::Result<c_int> {
    let mut r = ifreq(name)?;
    ioctl_ifreq(fd, libc::SIOCGIFFLAGS, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    Ok(unsafe { r.ifr_ifru.ifru_flags } as u16 as c_int)
}

/// Link speed in Mbit/s (0 when the driver does not know it) and duplex (`None` when
/// unknown) of interface `name`, from ethtool.
pub(super) fn if_speed(fd: BorrowedFd<'_>, name: &str) -> io::Result<(u32, Option<bool>)> {
    let mut cmd = EthtoolCmd {
        cmd: ETHTOOL_GSET,
        ..EthtoolCmd::default()
    };
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_data = (&mut cmd as *mut EthtoolCmd).cast::<libc::c_char>();
    ioctl_ifreq(fd, libc::SIOCETHTOOL, &mut r)?;
    let speed = (cmd.speed as u32) | ((cmd.speed_hi as u32) << 16);
    // SPEED_UNKNOWN is (u32)-1; anything absurd is treated as unknown too.
    let speed = if speed == u32::MAX || speed > 10_000_000 {
        0
    } else {
        speed
    };
    let duplex = match cmd.duplex {
        DUPLEX_FULL => Some(true),
        DUPLEX_HALF => Some(false),
        _ => None,
    };
    Ok((speed, duplex))
}

/// A shared memory mapping: a socket's packet ring (or, in tests, anonymous memory standing in
/// for one). Unmapped on drop.
pub(super) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the queues that use it access it
// only through `&mut self`, and the kernel side is synchronised by the ring status words.
unsafe impl Send for Mapping {}
// SAFETY: as above; a shared `&Mapping` only exposes the base pointer and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the ring(s) of packet socket `fd` (`len` bytes), pre-faulted so the data path
    /// takes no page faults.
    pub(super) fn ring(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        Self::map(len, libc::MAP_SHARED | libc::MAP_POPULATE, fd.as_raw_fd())
    }

    /// Zeroed anonymous memory laid out like a ring, for tests of the ring walking code.
    #[cfg(test)]
    pub(super) fn anonymous(len: usize) -> io::Result<Mapping> {
        Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
    }

    fn map(len: usize, flags: c_int, fd: c_int) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping chosen by the kernel; nothing else is touched.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
    }

    /// First byte of the mapping (page aligned).
    #[inline]
    pub(super) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and nobody else unmaps.
        unsafe { libc::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
    }
}

/// Reads a native-endian `u32` at `p + off` (kernel-written header field).
///
/// # Safety
/// `p + off .. p + off + 4` must lie inside a live mapping.
#[inline(always)]
pub(super) unsafe fn rd32(p: *const u8, off: usize) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::read_unaligned(p.add(off).cast::<u32>()) }
}

/// Reads a native-endian `u16` at `p + off` (kernel-written header field).
///
/// # Safety
/// `p + off .. p + off + 2` must lie inside a live mapping.
#[inline(always)]
pub(super) unsafe fn rd16(p: *const u8, off: usize) -> u16 {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::read_unaligned(p.add(off).cast::<u16>()) }
}

/// Writes a native-endian `u32` at `p + off`.
///
/// # Safety
/// `p + off .. p + off + 4` must lie inside a live mapping that the caller currently owns
/// (a block or frame whose status gives it to user space).
#[inline(always)]
pub(super) unsafe fn wr32(p: *mut u8, off: usize, v: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::write_unaligned(p.add(off).cast::<u32>(), v) }
}
