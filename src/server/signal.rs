//! Process signals: SIGTERM/SIGINT end serving, SIGHUP reloads.

/// Resolves on SIGTERM or SIGINT.
pub async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reloads the configuration on every SIGHUP, until aborted.
pub async fn reload_on_hangup(live: std::sync::Arc<super::reload::Live>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!(
                "cannot listen for SIGHUP; reload with POST /reload on the admin listener"
            );
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading");
            // Errors are logged and counted by `reload`.
            let _ = live.reload().await;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = live;
        std::future::pending::<()>().await;
    }
}
