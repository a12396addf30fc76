//! What can stop a load test as a whole (a bot's own failures are counted in the report
//! instead). Each error has a short reason code and a message naming the problem.

use std::fmt;

/// Why a load test could not run.
#[derive(Debug)]
pub enum LoadError {
    /// A bad option (the message names it).
    BadOption(String),
    /// The `mmo-server` binary to spawn was not found or is not a file.
    ServerBinaryNotFound(String),
    /// The spawned server exited, printed a bad ready line, or never printed one in time.
    ServerStart(String),
    /// A local I/O failure (temporary directory, process spawn).
    Io(String),
    /// The gameplay content the bots play lacks what the scenario uses.
    Content(String),
}

impl LoadError {
    /// The short reason code (`bad_option`, `server_binary_not_found`, `server_start`,
    /// `io`, `content`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::BadOption(_) => "bad_option",
            LoadError::ServerBinaryNotFound(_) => "server_binary_not_found",
            LoadError::ServerStart(_) => "server_start",
            LoadError::Io(_) => "io",
            LoadError::Content(_) => "content",
        }
    }

    fn message(&self) -> &str {
        match self {
            LoadError::BadOption(m)
            | LoadError::ServerBinaryNotFound(m)
            | LoadError::ServerStart(m)
            | LoadError::Io(m)
            | LoadError::Content(m) => m,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for LoadError {}
