//! The counting global allocator of the allocation tests (`tests/alloc.rs`,
//! `tests/alloc_sandbox.rs`): a test binary that declares
//! `mod support { pub mod counting; }` allocates through it, and reads what its own
//! thread allocated between two points with [`Allocated`] (other threads, such as the
//! test harness's, are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // (calls, bytes) of this thread; const-initialised and without a destructor, so
    // the allocator may touch it at any time
    static COUNTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

fn count(bytes: usize) {
    // a thread being torn down has no counter any more: its allocations are not ours
    let _ = COUNTS.try_with(|c| {
        let (calls, total) = c.get();
        c.set((calls + 1, total + bytes));
    });
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
    /// Everything this thread allocated so far.
    pub fn now() -> Self {
        let (calls, bytes) = COUNTS.try_with(Cell::get).unwrap_or((0, 0));
        Allocated { calls, bytes }
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
