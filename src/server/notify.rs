//! systemd readiness (`sd_notify`): when `NOTIFY_SOCKET` is set, report
//! `READY=1` once serving, `RELOADING=1` … `READY=1` around a reload, and
//! `STOPPING=1` when the drain starts (for `Type=notify` units).

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1\nSTATUS=serving"`) to systemd, if it asked.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let path_str = path.to_string_lossy();
    let sent = if let Some(name) = path_str.strip_prefix('@') {
        // An abstract socket (Linux).
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
