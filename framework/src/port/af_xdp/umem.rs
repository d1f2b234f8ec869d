//! The UMEM: the mempool's data region, registered with the kernel as it is.
//!
//! Buffer `i` of the pool starts at UMEM address `i × stride`, which is also the address put in
//! the fill ring for it. The chunk size is the pool's stride; when it is not a power of two the
//! UMEM is registered with `XDP_UMEM_UNALIGNED_CHUNK_FLAG`, and the kernel then uses fill
//! addresses exactly as given instead of rounding them down to a chunk boundary.
//!
//! Where received data lands (checked by `tests::rx_descriptor_addresses_match_the_documented_format`
//! on kernel 6.18, veth, copy mode, native and generic XDP): at
//! `fill address + XDP_PACKET_HEADROOM (256) + UMEM headroom (0)`, in both chunk modes. The rx
//! descriptor reports it differently:
//! * aligned: `addr` is the data address itself, e.g. `0x1f900` = buffer 63 × 2048 + 256;
//! * unaligned: the low 48 bits are the buffer's fill address and the high 16 the offset of the
//!   data in it (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`), e.g. `0x0100_0000_0002_1780` = buffer
//!   63 × 2176 + (256 << 48).
//!
//! `(addr & XSK_UNALIGNED_BUF_ADDR_MASK) + (addr >> 48)` is the data address in both cases
//! (the high bits are zero in aligned mode), so the driver always uses it: buffer index
//! `a / stride`, offset `a % stride`, and the mbuf that owns that buffer gets
//! `set_data(offset, len)`.
//!
//! Tx descriptors carry the plain data address `buffer offset + data_off` (no high bits), which
//! both modes accept; the completion ring returns the same value.

use std::io;
use std::os::fd::RawFd;

use crate::mem::{Mbuf, Mempool};

/// Bytes the kernel leaves in front of received data (`XDP_PACKET_HEADROOM`,
/// include/uapi/linux/bpf.h).
pub(crate) const XDP_PACKET_HEADROOM: usize = 256;
/// include/uapi/linux/if_xdp.h: the offset part of an unaligned-mode descriptor address.
const XSK_UNALIGNED_BUF_OFFSET_SHIFT: u32 = 48;
/// include/uapi/linux/if_xdp.h: the address part of an unaligned-mode descriptor address.
const XSK_UNALIGNED_BUF_ADDR_MASK: u64 = (1 << XSK_UNALIGNED_BUF_OFFSET_SHIFT) - 1;
/// net/xdp/xdp_umem.c: `XDP_UMEM_MIN_CHUNK_SIZE`, the smallest chunk the kernel accepts.
pub(crate) const XDP_UMEM_MIN_CHUNK_SIZE: usize = 2048;

/// Geometry of the UMEM (a copy of the pool's data region figures).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Umem {
    base: usize,
    len: usize,
    stride: usize,
    buffers: u32,
    unaligned: bool,
}

impl Umem {
    /// The UMEM over `pool`'s data region.
    pub(crate) fn of(pool: &Mempool) -> Umem {
        let (base, len, stride) = pool.data_region();
        Umem {
            base: base as usize,
            len,
            stride,
            buffers: pool.capacity() as u32,
            unaligned: !stride.is_power_of_two(),
        }
    }

    /// Chunk size (the pool's stride).
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// Bytes registered.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when registered with `XDP_UMEM_UNALIGNED_CHUNK_FLAG`.
    pub(crate) fn unaligned(&self) -> bool {
        self.unaligned
    }

    /// Number of buffers (the pool's capacity).
    pub(crate) fn buffers(&self) -> u32 {
        self.buffers
    }

    /// `setsockopt(XDP_UMEM_REG)` on socket `fd`.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<()> {
        let reg = libc::xdp_umem_reg {
            addr: self.base as u64,
            len: self.len as u64,
            chunk_size: self.stride as u32,
            headroom: 0,
            flags: if self.unaligned {
                libc::XDP_UMEM_UNALIGNED_CHUNK_FLAG
            } else {
                0
            },
            tx_metadata_len: 0,
        };
        // SAFETY: setsockopt with a fully initialised `xdp_umem_reg` and its size. The region
        // it names belongs to the pool, which the driver keeps alive (a `Mempool` handle) for
        // as long as the socket exists.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_UMEM_REG,
                (&reg as *const libc::xdp_umem_reg).cast(),
                std::mem::size_of::<libc::xdp_umem_reg>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The fill-ring address of buffer `index`.
    #[inline]
    pub(crate) fn fill_addr(&self, index: u32) -> u64 {
        index as u64 * self.stride as u64
    }

    /// Decodes an rx descriptor address into (buffer index, offset of the data in the buffer).
    #[inline]
    pub(crate) fn locate_rx(&self, addr: u64) -> (usize, usize) {
        let a = (addr & XSK_UNALIGNED_BUF_ADDR_MASK) + (addr >> XSK_UNALIGNED_BUF_OFFSET_SHIFT);
        let a = a as usize;
        (a / self.stride, a % self.stride)
    }

    /// The buffer index of a completion-ring address (a tx descriptor address we wrote).
    #[inline]
    pub(crate) fn index_of(&self, addr: u64) -> usize {
        (addr & XSK_UNALIGNED_BUF_ADDR_MASK) as usize / self.stride
    }

    /// If `m` can be sent without a copy — a single, direct, unshared segment whose buffer lies
    /// in this UMEM — its (buffer index, tx descriptor address).
    #[inline]
    pub(crate) fn tx_slot(&self, m: &Mbuf) -> Option<(usize, u64)> {
        let a = (m.buf_addr() as usize).wrapping_sub(self.base);
        if a >= self.len || m.nb_segs() != 1 || m.is_indirect() || m.refcnt() != 1 {
            return None;
        }
        Some((a / self.stride, (a + m.headroom()) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};

    fn pool(headroom: u16, data_room: u16) -> Mempool {
        let mut p = MempoolParams::new("umem-test", 64);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.headroom = headroom;
        p.data_room = data_room;
        Mempool::new(&p).unwrap()
    }

    #[test]
    fn geometry_and_address_decoding() {
        let mp = pool(128, 2048);
        let u = Umem::of(&mp);
        assert_eq!(u.stride(), 2176);
        assert!(u.unaligned());
        assert_eq!(u.fill_addr(3), 3 * 2176);
        // Unaligned: base in the low 48 bits, offset in the high 16.
        assert_eq!(u.locate_rx((3 * 2176) | (256 << 48)), (3, 256));
        // Aligned-style plain data address decodes the same way.
        assert_eq!(u.locate_rx(3 * 2176 + 256), (3, 256));
        assert_eq!(u.index_of(5 * 2176 + 128), 5);

        let aligned = Umem::of(&pool(0, 2048));
        assert_eq!(aligned.stride(), 2048);
        assert!(!aligned.unaligned());
        assert_eq!(aligned.locate_rx(7 * 2048 + 256), (7, 256));
    }

    #[test]
    fn tx_slot_accepts_own_direct_mbufs_only() {
        let mp = pool(128, 2048);
        let other = pool(128, 2048);
        let u = Umem::of(&mp);
        let mut m = mp.alloc().unwrap();
        m.append(60).unwrap();
        let idx = m.buf_index() as usize;
        assert_eq!(u.tx_slot(&m), Some((idx, (idx * 2176 + 128) as u64)));
        let c = m.clone_into(&mp).unwrap();
        assert_eq!(u.tx_slot(&m), None, "shared buffer");
        assert_eq!(u.tx_slot(&c), None, "indirect");
        drop(c);
        assert!(u.tx_slot(&m).is_some());
        let mut f = other.alloc().unwrap();
        f.append(60).unwrap();
        assert_eq!(u.tx_slot(&f), None, "another pool's buffer");
        let mut t = mp.alloc().unwrap();
        t.append(10).unwrap();
        m.chain(t).unwrap();
        assert_eq!(u.tx_slot(&m), None, "chained");
    }
}
