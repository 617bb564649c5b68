//! Task-role sessions outlive nothing: once a task has stopped (or is forgotten), the sessions
//! issued for it end. A pure step over what the identity service holds and the tasks' states.

/// Of the tasks holding sessions, those whose sessions must end: stopped, or unknown.
/// `stopped(arn)` is `Some(true)` for a stopped task, `Some(false)` for a live one and `None`
/// for a task the state does not have.
pub fn ended(holding: &[String], stopped: impl Fn(&str) -> Option<bool>) -> Vec<&str> {
    holding
        .iter()
        .map(String::as_str)
        .filter(|arn| stopped(arn).unwrap_or(true))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_with_their_task_and_with_unknown_tasks() {
        let holding = vec!["live".to_string(), "stopped".into(), "gone".into()];
        let got = ended(&holding, |arn| match arn {
            "live" => Some(false),
            "stopped" => Some(true),
            _ => None,
        });
        assert_eq!(got, vec!["stopped", "gone"]);
    }
}
