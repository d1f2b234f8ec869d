//! One contiguous, pre-faulted memory region per pool, on 2 MiB huge pages when possible.
//!
//! Three ways to get the memory, tried in this order:
//! 1. a file on a hugetlbfs mount (when a mount point is given): the region then has a file
//!    descriptor, which is what DPDK external memory or a second process needs;
//! 2. anonymous `MAP_HUGETLB` memory;
//! 3. ordinary pages, with one warning per process, so everything runs without root.
//!
//! The region is pre-faulted (`MAP_POPULATE`) so the data path never takes a page fault.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// Size of a huge page on x86-64 / aarch64 Linux.
pub const HUGE_PAGE_SIZE: usize = 2 << 20;
/// Size of an ordinary page.
pub const SMALL_PAGE_SIZE: usize = 4096;

/// Whether an arena must, may or must not use huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePolicy {
    /// Huge pages if available, else ordinary pages with one warning.
    #[default]
    Auto,
    /// Huge pages or an error.
    Required,
    /// Ordinary pages only.
    Off,
}

/// What backs an arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A file on a hugetlbfs mount (already unlinked; the descriptor keeps it alive).
    HugeFile(PathBuf),
    /// Anonymous `MAP_HUGETLB` memory.
    HugeAnon,
    /// Ordinary anonymous pages.
    Normal,
}

impl Backing {
    /// True for either huge-page backing.
    pub fn is_huge(&self) -> bool {
        !matches!(self, Backing::Normal)
    }
}

/// Errors creating an arena.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// Huge pages were required and none could be had.
    #[error(
        "huge pages are required but unavailable for {bytes} bytes ({reason}); reserve some with \
         `echo N > /proc/sys/vm/nr_hugepages` as root, or set memory.huge_pages = \"auto\""
    )]
    HugeUnavailable {
        /// Bytes asked for.
        bytes: usize,
        /// Why the last attempt failed.
        reason: String,
    },
    /// Even ordinary pages could not be mapped.
    #[error("cannot map {bytes} bytes: {source}")]
    Map {
        /// Bytes asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A mapped region, unmapped on drop.
#[derive(Debug)]
pub struct Arena {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
    file: Option<File>,
}

// SAFETY: the arena is plain memory; synchronising access to its contents is the job of the
// structures built on it (mempool caches and rings).
unsafe impl Send for Arena {}
// SAFETY: as above; `&Arena` only exposes the base pointer and length.
unsafe impl Sync for Arena {}

static WARNED_FALLBACK: AtomicBool = AtomicBool::new(false);

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Arena {
    /// Maps at least `bytes` bytes according to `policy`. `hugetlbfs`, when given, is a hugetlbfs
    /// mount point tried first; `name` labels the file created there.
    pub fn new(
        bytes: usize,
        policy: HugePolicy,
        hugetlbfs: Option<&Path>,
        name: &str,
    ) -> Result<Arena, ArenaError> {
        let bytes = bytes.max(1);
        if policy != HugePolicy::Off {
            let mut reasons = Vec::new();
            if cfg!(miri) {
                reasons.push("not available under Miri".to_string());
            } else {
                if let Some(dir) = hugetlbfs {
                    match Self::map_hugetlbfs(bytes, dir, name) {
                        Ok(a) => return Ok(a),
                        Err(e) => reasons.push(format!("hugetlbfs {}: {e}", dir.display())),
                    }
                }
                match Self::map_anon(round_up(bytes, HUGE_PAGE_SIZE), libc::MAP_HUGETLB) {
                    Ok(ptr) => {
                        return Ok(Arena {
                            ptr,
                            len: round_up(bytes, HUGE_PAGE_SIZE),
                            backing: Backing::HugeAnon,
                            file: None,
                        })
                    }
                    Err(e) => reasons.push(format!("MAP_HUGETLB: {e}")),
                }
            }
            let reason = reasons.join("; ");
            if policy == HugePolicy::Required {
                return Err(ArenaError::HugeUnavailable { bytes, reason });
            }
            if !WARNED_FALLBACK.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "warning: huge pages unavailable ({reason}); using ordinary 4 KiB pages \
                     (slower: more TLB misses). Reserve huge pages with `echo 512 > \
                     /proc/sys/vm/nr_hugepages` as root."
                );
            }
        }
        let len = round_up(bytes, SMALL_PAGE_SIZE);
        let ptr = if cfg!(miri) {
            Self::alloc_for_miri(len)
        } else {
            Self::map_anon(len, 0).map_err(|source| ArenaError::Map { bytes, source })?
        };
        Ok(Arena {
            ptr,
            len,
            backing: Backing::Normal,
            file: None,
        })
    }

    fn map_anon(len: usize, extra_flags: libc::c_int) -> std::io::Result<NonNull<u8>> {
        // SAFETY: an anonymous private mapping with no address hint cannot alias existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra_flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(NonNull::new(p.cast()).expect("mmap returned null without MAP_FIXED"))
    }

    fn map_hugetlbfs(bytes: usize, dir: &Path, name: &str) -> std::io::Result<Arena> {
        let len = round_up(bytes, HUGE_PAGE_SIZE);
        let path = dir.join(format!("ferroplane-{}-{}", std::process::id(), name));
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
        // SAFETY: plain open(2) with a valid C string.
        let fd = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        // The name is no longer needed: the descriptor keeps the pages.
        let _ = std::fs::remove_file(&path);
        file.set_len(len as u64)?;
        // SAFETY: a shared mapping of a file we own, with no address hint.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arena {
            ptr: NonNull::new(p.cast()).expect("mmap returned null without MAP_FIXED"),
            len,
            backing: Backing::HugeFile(path),
            file: Some(file),
        })
    }

    /// Miri cannot run mmap; give it zeroed heap memory with page alignment instead.
    fn alloc_for_miri(len: usize) -> NonNull<u8> {
        let layout = std::alloc::Layout::from_size_align(len, SMALL_PAGE_SIZE).expect("layout");
        // SAFETY: non-zero size layout.
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).expect("out of memory")
    }

    /// Start of the region.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (a whole number of pages).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: arenas have at least one page.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// What backs the region.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Page size of the region.
    pub fn page_size(&self) -> usize {
        if self.backing.is_huge() {
            HUGE_PAGE_SIZE
        } else {
            SMALL_PAGE_SIZE
        }
    }

    /// The hugetlbfs file descriptor, when the region is file-backed (for sharing the memory with
    /// DPDK or another process).
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if cfg!(miri) {
            let layout =
                std::alloc::Layout::from_size_align(self.len, SMALL_PAGE_SIZE).expect("layout");
            // SAFETY: allocated in `alloc_for_miri` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
            return;
        }
        // SAFETY: we mapped exactly this range and nothing refers to it any more (the owner
        // guarantees that before dropping).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_pages_are_zeroed_and_writable() {
        let a = Arena::new(10_000, HugePolicy::Off, None, "t").unwrap();
        assert_eq!(a.len(), 12_288);
        assert_eq!(a.backing(), &Backing::Normal);
        // SAFETY: the region is ours and `len` bytes long.
        let s = unsafe { std::slice::from_raw_parts_mut(a.as_ptr(), a.len()) };
        assert!(s.iter().all(|&b| b == 0));
        s[a.len() - 1] = 7;
    }

    #[test]
    fn auto_always_succeeds() {
        let a = Arena::new(3 << 20, HugePolicy::Auto, None, "auto").unwrap();
        assert!(a.len() >= 3 << 20);
        assert_eq!(a.len() % a.page_size(), 0);
    }

    fn free_huge_pages() -> usize {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("HugePages_Free:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// With huge pages reserved (CI reserves some), both huge backings must really be used:
    /// anonymous MAP_HUGETLB, and a file on a hugetlbfs mount (mounted here when root).
    #[test]
    #[cfg_attr(miri, ignore = "mmap is not available under Miri")]
    fn huge_backings_work_when_pages_are_reserved() {
        if free_huge_pages() < 4 {
            assert!(
                std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "no free huge pages but FERROPLANE_REQUIRE_TOOLS=1 (reserve some: echo 64 > \
                 /proc/sys/vm/nr_hugepages)"
            );
            eprintln!("skipping: no free huge pages reserved");
            return;
        }
        let a = Arena::new(3 << 20, HugePolicy::Required, None, "anon").unwrap();
        assert_eq!(a.backing(), &Backing::HugeAnon);
        assert_eq!(a.len(), 4 << 20);
        // SAFETY: the region is ours and `len` bytes long.
        unsafe { a.as_ptr().add(a.len() - 1).write(1) };
        drop(a);

        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping the hugetlbfs part: not root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "hugetlbfs", "none"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t hugetlbfs failed as root");
        let res = Arena::new(1 << 20, HugePolicy::Required, Some(dir.path()), "file");
        let checked = res.as_ref().map_err(|e| e.to_string()).map(|a| {
            // SAFETY: the region is ours.
            unsafe { a.as_ptr().write(7) };
            (
                matches!(a.backing(), Backing::HugeFile(_)),
                a.file().is_some(),
            )
        });
        // Unmap before unmounting, or the mount stays busy.
        drop(res);
        let umounted = std::process::Command::new("umount")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert_eq!(checked.unwrap(), (true, true));
        assert!(umounted, "hugetlbfs mount left behind");
    }

    #[test]
    fn required_fails_cleanly_or_gives_huge_pages() {
        // Whether huge pages are reserved depends on the machine; both outcomes must be sane.
        match Arena::new(1 << 20, HugePolicy::Required, None, "req") {
            Ok(a) => assert!(a.backing().is_huge()),
            Err(e) => assert!(e.to_string().contains("nr_hugepages"), "{e}"),
        }
    }
}
