//! Process signals that ask the pipeline to shut down.

/// Forwards every SIGTERM and SIGINT (Ctrl-C) into the returned channel, for
/// [`Pipeline::run_until_signal`](crate::Pipeline::run_until_signal).
///
/// Must be called inside a tokio runtime.
pub fn listen() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = term.recv() => {}
                    Some(()) = int.recv() => {}
                    else => return,
                }
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(rx)
}
