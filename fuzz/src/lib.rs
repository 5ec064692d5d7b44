//! What the fuzz targets share: a fixed clock, a fixed author, and the one property every
//! way of publishing must keep (what a local client may publish, every peer accepts).

use cairn_core::testkit::{Author, EPOCH, fuzz_store_entries};
use cairn_core::{Entry, Space, Timestamp, Verifier};
use cairn_node::service::NewStory;

/// The clock every target reads: a day after the test kit's epoch, so runs repeat exactly.
pub const NOW: Timestamp = Timestamp(EPOCH.0 + 24 * 3_600_000);

/// The author that signs what the targets publish.
pub fn author() -> &'static Author {
    static AUTHOR: std::sync::OnceLock<Author> = std::sync::OnceLock::new();
    AUTHOR.get_or_init(Author::ana)
}

/// Signs a story the way the node would (its links aside) and checks what every peer checks:
/// anything the node lets a member publish must be an entry that decodes to itself and
/// passes verification, with the story as written (tidied). Returns the entry, or `None`
/// where the node refuses the story.
pub fn publish_checked(new: &NewStory) -> Option<Entry> {
    let joined = || Ok(vec![Space::new(Space::DEFAULT).expect("the default space")]);
    let draft = new.draft(joined, NOW).ok()?;
    // Signing runs the header checks peers make, and the node publishes only what it signed.
    let entry = author().sign(1, None, draft).ok()?;
    let frame = entry.encode();
    let decoded = Entry::decode(&frame).expect("a signed entry decodes");
    assert_eq!(decoded.id(), entry.id());
    assert_eq!(decoded.encode(), frame);
    if let Err(err) = Verifier::new().verify(&decoded, NOW) {
        panic!("the node let a member publish an entry peers refuse: {err}");
    }
    let story = decoded
        .story()
        .expect("a story body")
        .expect("the story decodes");
    assert_eq!(story, new.story.clone().tidied());
    Some(decoded)
}

/// A real store on disk holding entries from a few authors in the default space, made once
/// per fuzzing process (its folder is left in the temporary directory).
pub fn store_with_entries() -> (&'static cairn_store::Store, &'static [Entry]) {
    static STORE: std::sync::OnceLock<(cairn_store::Store, Vec<Entry>)> =
        std::sync::OnceLock::new();
    let (store, entries) = STORE.get_or_init(|| {
        let folder = tempfile::Builder::new()
            .prefix("cairn-fuzz-store-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        let config = cairn_store::Config {
            budgets: cairn_store::Budgets::unlimited(),
            ..cairn_store::Config::default()
        };
        let store = cairn_store::Store::create(&folder, config).expect("a new store");
        let entries = fuzz_store_entries(0).expect("the fixed entries");
        let frames: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
        for result in store
            .insert_batch_unflushed(&frames, NOW)
            .expect("the store takes the entries")
        {
            result.expect("a valid entry");
        }
        store.flush().expect("flush");
        (store, entries)
    });
    (store, entries)
}

/// The largest single allocation any target may make: far above what an honest input needs
/// (a sync answer is at most 8 MiB), far below what a hostile length prefix could ask for.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// Every target runs under this allocator: one allocation larger than [`MAX_ALLOCATION`]
/// aborts the run, and libFuzzer keeps the input. So a decoder that reserves memory for a
/// length it has not seen fails here even without a sanitizer (libFuzzer's own
/// `-malloc_limit_mb` needs one, and a zeroed allocation is never touched, so memory use
/// would not show it).
struct BoundedAllocator;

impl BoundedAllocator {
    fn check(size: usize) {
        if size > MAX_ALLOCATION {
            use std::io::Write as _;
            // No allocation on this path: stderr is unbuffered.
            let _ = std::io::stderr()
                .write_all(b"\nan allocation larger than MAX_ALLOCATION (64 MiB): aborting\n");
            std::process::abort();
        }
    }
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the only addition is a size check that aborts.
unsafe impl std::alloc::GlobalAlloc for BoundedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller's layout goes to the system allocator as it came.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: `ptr` and `layout` came from this allocator, that is, from the system's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` and `layout` came from this allocator, that is, from the system's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: BoundedAllocator = BoundedAllocator;
