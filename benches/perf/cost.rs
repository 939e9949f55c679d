//! What one event costs: heap allocations (a global allocator that counts
//! them), the CPU time of the thread that handles it, of a process, and of
//! the whole machine.
#![allow(unsafe_code)] // GlobalAlloc is an unsafe trait (it only delegates to System); clock_gettime is C.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Counting;

// SAFETY: every call is passed unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What one side measured over its timed events: events/s, and the CPU
/// time per event, in µs, of its process (every thread) and of the whole
/// machine (the broker included).
#[derive(Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) rate: f64,
    pub(crate) process_cpu_us: f64,
    pub(crate) machine_cpu_us: f64,
}

/// Allocations (and reallocations) so far, in every thread.
pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// CPU time this thread has used so far (user and system), in seconds:
/// what one side's sending loop costs, whatever else shares the cores.
pub(crate) fn thread_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time this process has used so far, every thread (librdkafka's too).
pub(crate) fn process_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(status, 0, "clock_gettime({clock})");
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// /proc reports times in USER_HZ ticks, 100 a second on Linux.
const USER_HZ: f64 = 100.0;

/// CPU time every process on the machine has used so far (all cores, every
/// state but idle and waiting for I/O), in seconds: the broker, the bench
/// and any service it started.
pub(crate) fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // `cpu  user nice system idle iowait irq softirq steal …`
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    // Guest time is counted in user time already.
    let busy = ticks.iter().take(8).sum::<u64>() - idle;
    busy as f64 / USER_HZ
}

/// CPU time process `pid` has used so far (user and system), in seconds.
pub(crate) fn pid_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th of them.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks as f64 / USER_HZ
}
