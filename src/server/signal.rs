//! Process signals: SIGTERM/SIGINT end serving, SIGHUP reloads.

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives
/// while the server is starting must start the drain, not end the process.
pub fn terminate() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                    tracing::info!("SIGTERM received");
                }
                (Err(e), _) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The SIGHUP listener installed by [`hold_hangups`], until the server
/// takes it.
#[cfg(unix)]
static HELD: std::sync::Mutex<Option<tokio::signal::unix::Signal>> = std::sync::Mutex::new(None);

/// Installs the SIGHUP listener now, before the configuration is read:
/// SIGHUP's default action ends the process, and reading a large
/// configuration takes a while. A SIGHUP that arrives meanwhile is kept and
/// reloads once the server runs. Call from within the runtime.
#[cfg(unix)]
pub fn hold_hangups() {
    if let Some(s) = new_hangups() {
        *HELD.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    }
}

/// A SIGHUP listener: the one [`hold_hangups`] installed, or one installed
/// now. It must exist before the server says it is listening.
#[cfg(unix)]
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    let held = HELD.lock().unwrap_or_else(|p| p.into_inner()).take();
    held.or_else(new_hangups)
}

#[cfg(unix)]
fn new_hangups() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /reload on the admin listener");
            None
        }
    }
}

/// Reloads the configuration on every SIGHUP, until aborted.
#[cfg(unix)]
pub async fn reload_on_hangup(
    hangups: Option<tokio::signal::unix::Signal>,
    live: std::sync::Arc<super::reload::Live>,
) {
    let Some(mut hup) = hangups else { return };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading");
        // Errors are logged and counted by `reload`.
        let _ = live.reload().await;
    }
}
