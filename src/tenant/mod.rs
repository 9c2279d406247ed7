//! Tenants: the id parsed as a value, and the directory that maps ids and
//! hosts to regions.
//!
//! Pure: no I/O. Loading directory files happens in `config`.

pub mod directory;
pub mod id;
pub mod ids;
pub mod jwt;

pub use directory::{Directory, Entry, Hosts, Region, RegionSource};
pub use id::{TenantId, TenantIdError};
pub use jwt::{bearer_tid, TidError};
