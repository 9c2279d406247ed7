//! Builders for real servers and clients used by the integration tests.
#![allow(dead_code)]

pub mod backend;
pub mod certs;
pub mod child;
pub mod client;
pub mod proxy;
pub mod script;

pub use backend::Backend;
pub use proxy::ProxyBuilder;

/// A loopback address where connections are refused, for as long as it
/// lives: the port is bound but never listened on, so no other test can
/// take it (a port bound and then released can be taken at once by a
/// test running beside this one, and a connection would then succeed).
pub struct Refused {
    _socket: tokio::net::TcpSocket,
    /// The address.
    pub addr: std::net::SocketAddr,
}

impl Refused {
    /// Binds a port on 127.0.0.1 without listening on it.
    pub fn new() -> Refused {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("a loopback port");
        let addr = socket.local_addr().expect("its address");
        Refused {
            _socket: socket,
            addr,
        }
    }
}
