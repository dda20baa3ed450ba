//! The counting global allocator of the allocation tests (`tests/alloc.rs`,
//! `tests/alloc_sandbox.rs`): a test binary that declares `mod support;` allocates
//! through it, and reads what was allocated between two points with [`Allocated`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static CALLS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

fn count(bytes: usize) {
    CALLS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations: calls (`alloc` and `realloc`) and the bytes they asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocated {
    /// Allocation calls.
    pub calls: usize,
    /// Bytes asked for (a `realloc` counts its new size).
    pub bytes: usize,
}

impl Allocated {
    /// Everything allocated so far in this process.
    pub fn now() -> Self {
        Allocated {
            calls: CALLS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    /// What was allocated since `self` was read.
    pub fn since(self) -> Self {
        let now = Self::now();
        Allocated {
            calls: now.calls - self.calls,
            bytes: now.bytes - self.bytes,
        }
    }
}
