//! The `codec` scenario. Not written yet: it reports an error instead of a figure.

/// Runs the scenario and returns its measured figures as a JSON object.
pub fn run(_seed: u64) -> Result<serde_json::Value, String> {
    Err("the codec scenario is not implemented yet".to_owned())
}
