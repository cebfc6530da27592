//! Capture files mapped into memory, safe against the file shrinking while
//! it is read.
//!
//! Reading a capture through a map costs no copy: the kernel's copy into a
//! read buffer was most of the reader's time, and its writes pushed the
//! workers' state out of the shared cache.
//!
//! A page of a mapped file past the file's end (another process truncated
//! it while it was read) or one the disk cannot deliver raises SIGBUS when
//! touched, which would kill the process. So every map is registered, and a
//! SIGBUS handler, installed with the first map, replaces a faulting page
//! of a registered map with a page of zeros and records the lowest offset
//! that faulted: the access goes on, and the reader, which checks that
//! record before it delivers each frame, stops there with an error naming
//! the offset. A SIGBUS anywhere else goes to the handler that was there
//! before (by default, the process dies as it would have); after one sent
//! with kill, the handler is put back if the previous one reset it.
#![allow(unsafe_code)]

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Maps registered at once at most; a file opened beyond that is read
/// instead of mapped.
const SLOTS: usize = 16;

/// Granule in which the pages of a mapped file are let go of once read:
/// the size of a huge page, so that a file the kernel caches in 2 MiB
/// folios, and maps a folio at a time, is not split into small pages.
pub const RELEASE_GRANULE: usize = 2 << 20;

/// A registered map: its address range, and the lowest offset that faulted
/// (`usize::MAX` while none has).
struct Slot {
    /// Address of the map's first byte; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    fault: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fault: AtomicUsize::new(usize::MAX),
};

static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// Whether the handler is in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action found when the handler was installed, handed what the
/// handler does not handle. Set before the handler is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A capture file mapped read-only, registered with the SIGBUS handler for
/// as long as it lives.
pub struct MappedFile {
    map: memmap2::Mmap,
    slot: usize,
    windows: std::sync::Mutex<Windows>,
}

/// The windows of a mapped file in use, and how much of it was let go of.
#[derive(Default)]
struct Windows {
    /// Start of each window in use (at most a few).
    live: Vec<usize>,
    /// Pages below this offset were let go of.
    released: usize,
}

impl MappedFile {
    /// Maps `file`; None when it cannot be (an empty or special file, no
    /// free slot, no handler): the caller reads it instead.
    pub fn new(file: &File) -> Option<MappedFile> {
        install();
        if !INSTALLED.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: the map is private and read-only, and what it holds is
        // treated as untrusted bytes; a page that can no longer be read is
        // replaced by zeros (module documentation) instead of killing the
        // process.
        let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
        if map.is_empty() {
            return None;
        }
        let start = map.as_ptr() as usize;
        let slot = REGISTRY.iter().position(|s| {
            s.start
                .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        let s = REGISTRY.get(slot)?;
        s.fault.store(usize::MAX, Ordering::Relaxed);
        s.len.store(map.len(), Ordering::Release);
        // Large sequential reads ahead from the disk for a file not cached.
        let _ = map.advise(memmap2::Advice::Sequential);
        Some(MappedFile {
            map,
            slot,
            windows: Default::default(),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A window from `start` is in use (until [`MappedFile::done`]).
    pub fn hold(&self, start: usize) {
        if let Ok(mut w) = self.windows.lock() {
            w.live.push(start);
        }
    }

    /// The window from `start` is no longer in use: the pages below every
    /// window still in use (and below this one) are let go of, in whole
    /// [`RELEASE_GRANULE`]s; the last window lets go of the rest. The page
    /// cache keeps them. Without this the process would hold every page
    /// of the file it has read, and its resident memory would grow with
    /// the input instead of staying within the bound the rest of it keeps.
    pub fn done(&self, start: usize, end: usize) {
        let Ok(mut w) = self.windows.lock() else {
            return;
        };
        if let Some(i) = w.live.iter().position(|&s| s == start) {
            w.live.swap_remove(i);
        }
        let below = w.live.iter().copied().min().unwrap_or(start).min(start);
        let to = if end >= self.map.len() && w.live.is_empty() {
            self.map.len()
        } else {
            below - below % RELEASE_GRANULE
        };
        let from = w.released;
        if to > from {
            w.released = to;
            // SAFETY: the map is private and never written: its pages come
            // back unchanged from the file if read again.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }

    /// Lowest offset of the file that could not be read, if any did.
    pub fn fault(&self) -> Option<usize> {
        let at = REGISTRY.get(self.slot)?.fault.load(Ordering::Acquire);
        (at != usize::MAX).then_some(at)
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(s) = REGISTRY.get(self.slot) {
            s.len.store(0, Ordering::Release);
            s.start.store(0, Ordering::Release);
        }
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction are called with valid arguments.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if let Ok(page) = usize::try_from(page)
                && page.is_power_of_two()
            {
                PAGE.store(page, Ordering::Relaxed);
            }
            let action = own_action();
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return;
            }
            if PREVIOUS.set(previous).is_err() {
                return;
            }
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
}

/// The action that makes [`on_sigbus`] the SIGBUS handler.
fn own_action() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is a valid value to fill in; sigemptyset
    // is given a valid set (and is async-signal-safe).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        action
    }
}

/// The SIGBUS handler: only async-signal-safe work (atomics, mmap,
/// sigaction).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe {
        info.as_ref()
            .map_or((0, 0), |i| (i.si_code, i.si_addr() as usize))
    };
    // A fault (not a signal sent with kill, whose si_addr means nothing)
    // inside a registered map.
    if code > 0 && replace_page(addr) {
        return;
    }
    // Otherwise what would have happened without this handler.
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    match previous.sa_sigaction {
        // An ignored SIGBUS sent with kill stays ignored.
        libc::SIG_IGN if code <= 0 => {}
        libc::SIG_DFL | libc::SIG_IGN => {
            // The default action (a fault cannot be ignored: returning would
            // repeat it forever). A fault repeats on return and ends the
            // process; a signal sent with kill is raised again, to arrive
            // once this handler returns.
            let mut default: libc::sigaction = *previous;
            default.sa_sigaction = libc::SIG_DFL;
            // SAFETY: a valid action for SIGBUS; raise is async-signal-safe.
            unsafe {
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                if code <= 0 {
                    libc::raise(libc::SIGBUS);
                }
            }
        }
        handler => {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action's own handler, called as it
                // was registered to be.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: as above, a plain handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
            // A handler may reset SIGBUS to its default (Rust's own does,
            // for any SIGBUS not on a stack guard page, counting on a fault
            // to repeat and end the process). A signal sent with kill does
            // not repeat: this handler is put back, or the maps would be
            // left without it and a file cut short later would end the
            // process. A fault is left to repeat under what the previous
            // handler set.
            if code <= 0 {
                let action = own_action();
                // SAFETY: a valid action for SIGBUS; sigaction is
                // async-signal-safe.
                unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
            }
        }
    }
}

/// Replaces the page holding `addr`, if it lies in a registered map, with
/// a page of zeros, and records the fault; false when it is not in one (or
/// the page could not be replaced).
fn replace_page(addr: usize) -> bool {
    for s in &REGISTRY {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        // A slot let go of and taken again between the two loads above
        // changes its start: skip it rather than pair one map's start with
        // another's length.
        if start == 0 || s.start.load(Ordering::Acquire) != start {
            continue;
        }
        if addr < start || addr - start >= len {
            continue;
        }
        let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
        // SAFETY: the page lies inside a live map of this process (it is
        // unregistered before it is unmapped); a private anonymous
        // read-only page of zeros takes its place.
        let zero = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE.load(Ordering::Relaxed),
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zero == libc::MAP_FAILED {
            return false;
        }
        s.fault.fetch_min(addr - start, Ordering::AcqRel);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::io::Write;

    /// A mapped file cut short underneath its reader: its pages past the
    /// new end read as zeros, the first such offset is recorded, and the
    /// process lives on.
    #[test]
    fn truncated_under_the_map_reads_zeros_and_says_where() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0xabu8; 1 << 20]).unwrap();
        let map = MappedFile::new(&f).unwrap();
        let bytes = map.bytes();
        assert_eq!(bytes[12345], 0xab);
        assert_eq!(map.fault(), None);
        f.set_len(100_000).unwrap();
        // Within the page holding the new end, the bytes past it read as
        // zeros (no fault); the pages after it fault.
        assert_eq!(bytes[99_999], 0xab);
        let at = 700_001;
        assert_eq!(std::hint::black_box(bytes)[at], 0);
        assert_eq!(map.fault(), Some(at));
        assert_eq!(bytes[at + 10], 0);
        assert_eq!(bytes[300_000], 0);
        assert_eq!(map.fault(), Some(300_000));
        drop(map);
        // The slot is free again and a new map of the file starts clean.
        let map = MappedFile::new(&f).unwrap();
        assert_eq!(map.bytes().len(), 100_000);
        assert_eq!(map.fault(), None);
    }

    /// A SIGBUS sent with kill goes to the handler that was there before
    /// (Rust's own, which resets SIGBUS to its default), and the maps keep
    /// their protection: a file cut short after it still reads as zeros.
    /// Run in a process of its own (this test binary, asked for this test
    /// alone): the signal acts on the whole process.
    #[test]
    fn maps_keep_their_handler_after_a_sigbus_sent_with_kill() {
        const CHILD: &str = "BACKFLOW_TEST_SIGBUS_CHILD";
        let name = "capture::map::tests::maps_keep_their_handler_after_a_sigbus_sent_with_kill";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "child: {:?}\n{text}", out.status);
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0xabu8; 1 << 20]).unwrap();
        let map = MappedFile::new(&f).unwrap();
        for _ in 0..2 {
            // SAFETY: raising a signal whose handlers are set.
            assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
        }
        f.set_len(100_000).unwrap();
        let bytes = map.bytes();
        assert_eq!(std::hint::black_box(bytes)[500_000], 0);
        assert_eq!(map.fault(), Some(500_000));
    }
}
