//! `mmo-server`: the dedicated server (work in progress; see issue 4).
