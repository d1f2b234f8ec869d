//! The XDP side of the driver, through raw `bpf(2)` calls: the XSKMAP, the redirect program and
//! the BPF link that attaches it to the interface.
//!
//! Every object is an [`OwnedFd`]. The link is the important one: a BPF link belongs to its file
//! descriptor, so when the descriptor is closed — the port is dropped, `open` fails half-way, or
//! the process dies for any reason, SIGKILL included — the kernel detaches the program. Nothing
//! is pinned in bpffs, so nothing can outlive the process.
//!
//! Constants and attribute layouts are not in the `libc` crate; each is copied from the kernel
//! UAPI header named next to it (`include/uapi/linux/bpf.h`, `include/uapi/linux/if_link.h`).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// include/uapi/linux/bpf.h: enum bpf_cmd.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_CREATE: libc::c_long = 28;
// include/uapi/linux/bpf.h: enum bpf_map_type, enum bpf_prog_type, enum bpf_attach_type.
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
// include/uapi/linux/bpf.h: `src_reg` of a ld_imm64 whose immediate is a map fd.
const BPF_PSEUDO_MAP_FD: u8 = 1;
// include/uapi/linux/bpf.h: helper id of `long bpf_redirect_map(map, key, flags)`.
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
// include/uapi/linux/bpf.h: enum xdp_action.
const XDP_PASS: i32 = 2;
// include/uapi/linux/bpf.h: offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
// include/uapi/linux/if_link.h: XDP attach flags.
/// Attach in generic (skb) mode.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// Attach in native (driver) mode.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

// Opcode parts, include/uapi/linux/bpf_common.h and bpf.h.
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// `struct bpf_insn`: opcode, dst/src registers (4 bits each), offset, immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The redirect program, hand-assembled:
///
/// ```text
/// r2 = *(u32 *)(r1 + 16)      ; ctx->rx_queue_index
/// r1 = map_fd ll              ; the XSKMAP (ld_imm64, two slots, BPF_PSEUDO_MAP_FD)
/// r3 = XDP_PASS               ; flags: the action when the slot is empty (kernel >= 5.3)
/// call bpf_redirect_map
/// exit                        ; r0 = XDP_REDIRECT, or XDP_PASS for queues without a socket
/// ```
pub(crate) fn redirect_program(map_fd: RawFd) -> [Insn; 6] {
    [
        insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        insn(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        insn(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, XDP_PASS),
        insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

// The `union bpf_attr` members used here, from include/uapi/linux/bpf.h. The kernel accepts a
// prefix of the union (it zero-fills the rest), so each command passes only its own struct.

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Offset and length of `name` in `struct bpf_prog_info` (include/uapi/linux/bpf.h).
const PROG_INFO_NAME: std::ops::Range<usize> = 64..80;

/// Calls `bpf(cmd, attr, sizeof attr)`; a non-negative result becomes `Ok`.
fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised `repr(C)` struct of the layout the kernel
    // expects for `cmd`, and its size is passed along; the kernel reads (and for some commands
    // writes) only within that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Wraps a descriptor returned by `bpf(2)`.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn name16(s: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, b) in n.iter_mut().zip(s.bytes().take(15)) {
        *d = b;
    }
    n
}

/// A `BPF_MAP_TYPE_XSKMAP`: NIC queue index → AF_XDP socket.
#[derive(Debug)]
pub(crate) struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// Creates a map with keys `0..max_entries`.
    pub(crate) fn create(max_entries: u32) -> io::Result<XskMap> {
        let mut a = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries,
            map_name: name16("fp_xsks"),
            ..Default::default()
        };
        Ok(XskMap {
            fd: owned(sys_bpf(BPF_MAP_CREATE, &mut a)?),
        })
    }

    /// Points slot `queue` at the AF_XDP socket `sock`.
    pub(crate) fn insert(&self, queue: u32, sock: RawFd) -> io::Result<()> {
        let key = queue;
        let value = sock as u32;
        let mut a = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags: 0, // BPF_ANY
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Why the program could not be loaded.
#[derive(Debug)]
pub(crate) struct LoadError {
    pub(crate) err: io::Error,
    /// The verifier's log, when it rejected the program.
    pub(crate) log: String,
}

/// The loaded redirect program.
#[derive(Debug)]
pub(crate) struct XdpProgram {
    fd: OwnedFd,
}

/// Name the program is loaded under (shown by `bpftool prog` and in our own error messages).
pub(crate) const PROG_NAME: &str = "fp_xsk_redir";

impl XdpProgram {
    /// Loads [`redirect_program`] for `map`. On failure the load is repeated with the verifier
    /// log on, and the log is returned with the error.
    pub(crate) fn load(map: &XskMap) -> Result<XdpProgram, LoadError> {
        let insns = redirect_program(map.raw_fd());
        let license = c"Dual MIT/GPL";
        let attr = |log: &mut [u8]| ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: if log.is_empty() { 0 } else { 1 },
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            prog_name: name16(PROG_NAME),
            ..Default::default()
        };
        let mut a = attr(&mut []);
        match sys_bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => Ok(XdpProgram { fd: owned(fd) }),
            Err(err) => {
                let mut buf = vec![0u8; 64 * 1024];
                let mut a = attr(&mut buf);
                if let Ok(fd) = sys_bpf(BPF_PROG_LOAD, &mut a) {
                    // Loaded the second time (a transient failure): keep it.
                    return Ok(XdpProgram { fd: owned(fd) });
                }
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                let log = String::from_utf8_lossy(&buf[..end]).trim().to_string();
                Err(LoadError { err, log })
            }
        }
    }
}

/// An attached program: detached when this value (its descriptor) is dropped.
#[derive(Debug)]
pub(crate) struct XdpLink {
    _fd: OwnedFd,
}

impl XdpLink {
    /// Attaches `prog` to interface `ifindex` with `BPF_LINK_CREATE` in the mode given by
    /// `flags` ([`XDP_FLAGS_DRV_MODE`] or [`XDP_FLAGS_SKB_MODE`]).
    pub(crate) fn attach(prog: &XdpProgram, ifindex: u32, flags: u32) -> io::Result<XdpLink> {
        let mut a = LinkCreateAttr {
            prog_fd: prog.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags,
        };
        Ok(XdpLink {
            _fd: owned(sys_bpf(BPF_LINK_CREATE, &mut a)?),
        })
    }
}

/// The name of the loaded program with kernel id `id` (for error messages), if it can be read.
pub(crate) fn prog_name(id: u32) -> Option<String> {
    let mut a = GetFdByIdAttr {
        id,
        ..Default::default()
    };
    let fd = owned(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut a).ok()?);
    let mut info = [0u64; 10];
    let mut a = InfoByFdAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<[u64; 10]>() as u32,
        info: info.as_mut_ptr() as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a).ok()?;
    // SAFETY: `info` is 80 initialised bytes; viewing them as bytes is always valid.
    let bytes = unsafe { std::slice::from_raw_parts(info.as_ptr().cast::<u8>(), 80) };
    let name = &bytes[PROG_INFO_NAME];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_encoding_matches_the_kernel_abi() {
        let p = redirect_program(7);
        assert_eq!(size_of::<Insn>(), 8);
        // r2 = *(u32 *)(r1 + 16): opcode 0x61, dst 2, src 1.
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        // ld_imm64 r1 with a map fd: opcode 0x18, src = BPF_PSEUDO_MAP_FD; second half zero.
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!(p[2], insn(0, 0, 0, 0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, 2));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    #[test]
    fn attr_layouts_match_the_uapi() {
        assert_eq!(size_of::<MapCreateAttr>(), 44);
        assert_eq!(size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
    }
}
