//! The load tester's own CPU use, so a run whose bots were starved (and so measured their
//! own delays rather than the server's) is marked void.
//!
//! `getrusage(RUSAGE_SELF)`: user plus system time of every thread of this process (the
//! spawned server is a child process and is not included). A run is void when the bots
//! used more than [`VOID_ABOVE_SHARE`] of the cores they may use (`--worker-threads`,
//! capped by the machine's cores) over the steady phase: past that, ticks of the bots
//! themselves run late, and latency figures include that lateness.

use std::time::Instant;

/// Share of the bots' cores above which a run is void.
pub const VOID_ABOVE_SHARE: f64 = 0.85;
/// The shortest window a CPU figure is computed over, seconds.
pub const MIN_WINDOW_S: f64 = 1.0;

/// CPU seconds this process used so far, or `None` where `getrusage` is not available.
#[must_use]
pub fn process_cpu_s() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a valid `who`.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: getrusage returned 0, so it filled the struct (it was zeroed before too).
        let usage = unsafe { usage.assume_init() };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A CPU reading and when it was taken.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    cpu_s: Option<f64>,
    at: Instant,
}

impl CpuMark {
    /// Now.
    #[must_use]
    pub fn now() -> Self {
        CpuMark {
            cpu_s: process_cpu_s(),
            at: Instant::now(),
        }
    }

    /// Cores used on average since `self` (`None` when CPU time is not available or less
    /// than [`MIN_WINDOW_S`] passed: CPU time is counted in scheduler ticks, and a short
    /// window divides their rounding by almost nothing).
    #[must_use]
    pub fn cores_since(&self) -> Option<f64> {
        let wall_s = self.at.elapsed().as_secs_f64();
        let used_s = process_cpu_s()? - self.cpu_s?;
        (wall_s >= MIN_WINDOW_S).then(|| used_s.max(0.0) / wall_s)
    }
}

/// Cores online on the machine, whatever this process's affinity (a pinned load tester and
/// a server pinned elsewhere share the machine, not this process's cores); `None` where
/// the OS does not say.
#[must_use]
pub fn machine_cores() -> Option<usize> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no memory effects; a negative answer means unknown.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        usize::try_from(n).ok().filter(|&n| n > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The cores the bots may use: their worker threads, at most the machine's cores.
#[must_use]
pub fn bot_cores(worker_threads: usize, machine_cores: usize) -> usize {
    worker_threads.clamp(1, machine_cores.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_as_cpu() {
        let mark = CpuMark::now();
        let until = Instant::now() + std::time::Duration::from_millis(1_100);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let cores = mark.cores_since().expect("getrusage works here");
        // One thread spun for the whole window (other test threads may add to it).
        assert!(cores > 0.5, "{cores} cores");
        assert_eq!(bot_cores(8, 2), 2);
        assert_eq!(bot_cores(0, 2), 1);
        let online = machine_cores().expect("the OS says how many cores are online");
        assert!(online >= std::thread::available_parallelism().map_or(1, usize::from));
    }
}
