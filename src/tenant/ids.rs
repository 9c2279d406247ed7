//! A growable array of tenant ids in its own anonymous memory mapping.
//!
//! A million-tenant directory is built on a loader thread and dropped,
//! after a reload, on whichever thread let go of the old configuration
//! last. An allocator keeps memory freed across threads for the thread that
//! allocated it, so each reload left the old directory's pages resident. A
//! mapping of its own is returned to the system the moment it is dropped,
//! and pages reserved but never written (the room left for growth) take no
//! memory at all.

/// Tenant ids (128-bit values), in a mapping of their own.
#[derive(Debug)]
pub struct Ids {
    map: Option<memmap2::MmapMut>,
    len: usize,
}

impl Clone for Ids {
    fn clone(&self) -> Ids {
        let mut c = Ids::with_capacity(self.len);
        for &id in self.as_slice() {
            c.push(id);
        }
        c
    }
}

const SIZE: usize = std::mem::size_of::<u128>();

impl Ids {
    /// Room for `capacity` ids, reserved (not yet memory).
    pub fn with_capacity(capacity: usize) -> Ids {
        let map = (capacity > 0)
            .then(|| {
                memmap2::MmapOptions::new()
                    .len(capacity.saturating_mul(SIZE))
                    .map_anon()
                    .ok()
            })
            .flatten();
        Ids { map, len: 0 }
    }

    fn capacity(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / SIZE)
    }

    /// Appends an id, moving to a mapping twice the size when full.
    pub fn push(&mut self, id: u128) {
        if self.len == self.capacity() {
            let mut bigger = Ids::with_capacity((self.len * 2).max(1024));
            bigger.as_room()[..self.len].copy_from_slice(self.as_slice());
            bigger.len = self.len;
            *self = bigger;
        }
        let len = self.len;
        if let Some(slot) = self.as_room().get_mut(len) {
            *slot = id;
            self.len += 1;
        }
    }

    /// The whole mapping as ids (a mapping is page-aligned, so the cast
    /// always holds; an empty view otherwise).
    fn as_room(&mut self) -> &mut [u128] {
        match &mut self.map {
            Some(m) => bytemuck::try_cast_slice_mut(&mut m[..]).unwrap_or_default(),
            None => &mut [],
        }
    }

    /// The ids.
    pub fn as_slice(&self) -> &[u128] {
        match &self.map {
            Some(m) => bytemuck::try_cast_slice(&m[..self.len * SIZE]).unwrap_or_default(),
            None => &[],
        }
    }

    /// Sorts the ids and drops repeats.
    pub fn sort_dedup(&mut self) {
        let len = self.len;
        self.len = crate::slices::sort_dedup(&mut self.as_room()[..len]);
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
