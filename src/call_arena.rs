//! The wasm module's allocator: a per-call arena in front of the system allocator.
//!
//! A `validate` call builds and drops thousands of small JSON nodes, and in WebAssembly
//! every one of them goes through dlmalloc: about a third of the call's instructions. None
//! of it outlives the call (the response is copied out by the host before the next call),
//! so during a call memory is handed out by bumping a pointer in one block, frees inside the
//! block are no-ops, and the next call starts the block over. Allocations that do not fit,
//! and everything outside a call, use the system allocator as before; the block grows (up
//! to 16 MiB) to what the last call needed.
//!
//! Whatever must survive a call (the settings cache) must be rebuilt outside it: see
//! `lib.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

const FIRST_BLOCK: usize = 1 << 20;
const MAX_BLOCK: usize = 16 << 20;

pub struct CallArena {
    start: Cell<usize>,
    end: Cell<usize>,
    next: Cell<usize>,
    active: Cell<bool>,
    /// Bytes the current call asked for, block or not: the next block's size.
    wanted: Cell<usize>,
    /// Whether the current call allocated outside the block (it did not fit).
    overflowed: Cell<bool>,
}

// Only for single-threaded programs (the WebAssembly module, the profiling example): the
// cells are never shared across threads there.
unsafe impl Sync for CallArena {}

impl CallArena {
    pub const fn new() -> Self {
        CallArena {
            start: Cell::new(0),
            end: Cell::new(0),
            next: Cell::new(0),
            active: Cell::new(false),
            wanted: Cell::new(FIRST_BLOCK),
            overflowed: Cell::new(false),
        }
    }

    /// Runs `f` with the arena on. Everything allocated in it is valid until the next call
    /// starts. Not reentrant.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        self.begin();
        let out = f();
        self.active.set(false);
        out
    }

    /// Whether the current (or last) call allocated anything outside the block: then its
    /// data must be dropped normally, or those allocations would never be freed.
    pub fn overflowed(&self) -> bool {
        self.overflowed.get()
    }

    fn begin(&self) {
        let size = self.end.get() - self.start.get();
        let wanted = self.wanted.get().clamp(FIRST_BLOCK, MAX_BLOCK);
        if size < wanted {
            let size = wanted.next_power_of_two().min(MAX_BLOCK);
            unsafe {
                if self.start.get() != 0 {
                    System.dealloc(self.start.get() as *mut u8, block_layout(self.capacity()));
                }
                let block = System.alloc(block_layout(size)) as usize;
                self.start.set(block);
                self.end.set(if block == 0 { 0 } else { block + size });
            }
        }
        self.next.set(self.start.get());
        self.wanted.set(0);
        self.overflowed.set(false);
        self.active.set(self.start.get() != 0);
    }

    fn capacity(&self) -> usize {
        self.end.get() - self.start.get()
    }

    fn owns(&self, p: *mut u8) -> bool {
        let p = p as usize;
        p >= self.start.get() && p < self.end.get()
    }

    /// Bump allocation; null when the block is full or the arena is off.
    fn bump(&self, layout: Layout) -> *mut u8 {
        if !self.active.get() {
            return ptr::null_mut();
        }
        self.wanted
            .set(self.wanted.get().saturating_add(layout.size()));
        let align = layout.align();
        let Some(at) = self
            .next
            .get()
            .checked_add(align - 1)
            .map(|n| n & !(align - 1))
        else {
            return ptr::null_mut();
        };
        match at.checked_add(layout.size()) {
            Some(end) if end <= self.end.get() => {
                self.next.set(end);
                at as *mut u8
            }
            _ => ptr::null_mut(),
        }
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

fn block_layout(size: usize) -> Layout {
    // 16 covers every alignment Rust's types here need.
    Layout::from_size_align(size, 16).expect("block layout")
}

unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if p.is_null() {
            if self.active.get() {
                self.overflowed.set(true);
            }
            unsafe { System.alloc(layout) }
        } else {
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            if self.active.get() {
                self.overflowed.set(true);
            }
            return unsafe { System.realloc(p, layout, new_size) };
        }
        // The last block handed out grows in place (a String or Vec being built).
        let end = p as usize + layout.size();
        if self.active.get()
            && end == self.next.get()
            && let Some(new_end) = (p as usize).checked_add(new_size)
            && new_end <= self.end.get()
        {
            let grown = new_size.saturating_sub(layout.size());
            self.wanted.set(self.wanted.get().saturating_add(grown));
            self.next.set(new_end);
            return p;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn allocations_in_a_call_come_from_the_block_and_restart_with_the_next_call() {
        let arena = CallArena::new();
        let first = arena.run(|| unsafe {
            let a = arena.alloc(layout(24, 8));
            let b = arena.alloc(layout(1, 1));
            let c = arena.alloc(layout(16, 16));
            assert!(arena.owns(a) && arena.owns(b) && arena.owns(c));
            assert_eq!(c as usize % 16, 0);
            assert!(b as usize >= a as usize + 24 && c as usize > b as usize);
            a.write_bytes(7, 24);
            arena.dealloc(a, layout(24, 8)); // a no-op: still readable until the next call
            assert_eq!(*a.add(23), 7);
            a as usize
        });
        let again = arena.run(|| unsafe { arena.alloc(layout(24, 8)) as usize });
        assert_eq!(first, again, "the next call starts the block over");
    }

    #[test]
    fn outside_a_call_and_beyond_the_block_the_system_allocator_answers() {
        let arena = CallArena::new();
        unsafe {
            let outside = arena.alloc(layout(64, 8));
            assert!(!outside.is_null() && !arena.owns(outside));
            arena.dealloc(outside, layout(64, 8));
        }
        arena.run(|| unsafe {
            let big = arena.alloc(layout(FIRST_BLOCK * 2, 8));
            assert!(!big.is_null() && !arena.owns(big));
            big.write_bytes(1, FIRST_BLOCK * 2);
            arena.dealloc(big, layout(FIRST_BLOCK * 2, 8));
        });
        assert!(arena.overflowed());
        // The block grew to what that call wanted.
        arena.run(|| assert!(arena.capacity() >= FIRST_BLOCK * 2));
        assert!(!arena.overflowed());
    }

    #[test]
    fn realloc_grows_the_last_block_in_place_and_copies_others() {
        let arena = CallArena::new();
        arena.run(|| unsafe {
            let a = arena.alloc(layout(8, 8));
            a.write_bytes(3, 8);
            let grown = arena.realloc(a, layout(8, 8), 64);
            assert_eq!(grown, a, "the last allocation grows in place");
            let b = arena.alloc(layout(8, 8));
            let moved = arena.realloc(a, layout(64, 8), 128);
            assert_ne!(moved, a);
            assert!(moved as usize > b as usize);
            assert_eq!(*moved.add(7), 3, "contents are copied");
        });
    }

    #[test]
    fn a_vec_built_in_a_call_keeps_its_contents_after_it() {
        // The response is built in the call and read by the host after it returns.
        let arena = CallArena::new();
        let v = arena.run(|| unsafe {
            let p = arena.alloc(layout(4, 1));
            p.copy_from_nonoverlapping(b"done".as_ptr(), 4);
            p
        });
        assert_eq!(unsafe { std::slice::from_raw_parts(v, 4) }, b"done");
    }
}
