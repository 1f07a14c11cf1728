//! Binding TCP listeners with a deliberate accept backlog.
//!
//! `tokio::net::TcpListener::bind` uses mio's backlog of 128: a burst of
//! more connections than that overflows the kernel's accept queue, SYNs are
//! dropped and those clients wait a second or more for a retransmission.
//! Every Spine listener binds here instead, with [`BACKLOG`] (the kernel
//! caps it at `net.core.somaxconn`).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The accept backlog requested for every listener.
pub const BACKLOG: u32 = 4096;

/// Binds `addr` and listens with [`BACKLOG`]. Like `TcpListener::bind`
/// it sets `SO_REUSEADDR`, so a restarted node can bind while old
/// connections linger in TIME_WAIT; a port another socket listens on is
/// still an error (Linux refuses it without `SO_REUSEPORT`).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
