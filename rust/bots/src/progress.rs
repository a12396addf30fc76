//! Live counts of a run (bots connected, active, done), shared by the bots, and the
//! progress bar that shows them on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters the bots update as they go. All are monotonic except `active`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Bots launched.
    pub launched: AtomicUsize,
    /// Bots whose connect attempt ended (welcomed or failed).
    pub attempted: AtomicUsize,
    /// Bots welcomed.
    pub connected: AtomicUsize,
    /// Bots welcomed and not yet gone.
    pub active: AtomicUsize,
    /// The most `active` bots at once.
    pub ccu_peak: AtomicUsize,
    /// Bots that finished their scenario (or were stopped) and started to log out.
    pub leaving: AtomicUsize,
    /// Bots whose task ended, whatever the outcome.
    pub done: AtomicUsize,
}

impl Counters {
    pub(crate) fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One more bot active (updates the peak).
    pub(crate) fn activate(&self) {
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.ccu_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// One active bot fewer.
    pub(crate) fn deactivate(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The progress bar (hidden when not wanted) and its refresh task.
pub(crate) struct Progress {
    bar: ProgressBar,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// A bar over `bots` bots drawn to stderr when `visible`, refreshed from `counters`
    /// five times a second.
    pub(crate) fn start(visible: bool, bots: usize, counters: Arc<Counters>) -> Self {
        if !visible {
            return Progress {
                bar: ProgressBar::hidden(),
                refresher: None,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(bots as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} done  {msg}")
        {
            bar.set_style(style);
        }
        let shown = bar.clone();
        let refresher = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                shown.set_position(Counters::get(&counters.done) as u64);
                shown.set_message(format!(
                    "connected {}  active {}  launched {}",
                    Counters::get(&counters.connected),
                    Counters::get(&counters.active),
                    Counters::get(&counters.launched),
                ));
            }
        });
        Progress {
            bar,
            refresher: Some(refresher),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        if let Some(r) = self.refresher {
            r.abort();
        }
        self.bar.finish_and_clear();
    }
}
