//! What the step reports: its outputs, plan actions and summaries.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::layout::{self, Switch};

/// What `run` returns (and checkpoints before the switch); `verify` and
/// `undo` receive it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// The link switched (the config's `link`).
    pub link: String,
    /// The releases' directory (the config's `releases_dir`).
    pub releases_dir: String,
    /// The release the link pointed to before the run; `null` when its
    /// target was not a directory directly inside `releases_dir`.
    pub from: Option<String>,
    /// The release the link points to after the run.
    pub to: String,
    /// The link's target before the run, exactly as written: what `undo` writes back.
    pub from_target: String,
    /// The link's target after the run, exactly as written (relative).
    pub to_target: String,
    /// Whether the run changed the link (`false` when it already pointed at `to`).
    pub switched: bool,
}

impl Outputs {
    pub fn of(switch: &Switch) -> Self {
        Self {
            link: switch.link.clone(),
            releases_dir: switch.releases_dir.clone(),
            from: switch.from.clone(),
            to: switch.to.clone(),
            from_target: switch.from_target.clone(),
            to_target: switch.to_target.clone(),
            switched: !switch.in_place,
        }
    }
}

/// `from` for a message: the release's name, or the target as written.
fn from_name(from: Option<&str>, from_target: &str) -> String {
    match from {
        Some(release) => release.to_owned(),
        None => format!("`{}`", from_target.escape_debug()),
    }
}

/// `current -> releases/1.0.0`, as `ls -l` shows a link.
pub fn arrow(link: &str, target: &str) -> String {
    format!("{} -> {}", crate::paths::file_name(link), target.escape_debug())
}

/// The plan's one action.
pub fn plan_action(switch: &Switch, marker: Option<&str>) -> backout_sdk::Action {
    let Switch { link, from, to, from_target, to_target, .. } = switch;
    if switch.in_place {
        return backout_sdk::Action::in_place(format!("leave {link} at {to}: it already points there"))
            .detail(format!("{} (nothing to change)", arrow(link, from_target)));
    }
    let mut detail = format!("{} becomes {}", arrow(link, from_target), arrow(link, to_target));
    if let Some(chosen) = &switch.chosen_by {
        detail.push_str(&format!(
            "; \"previous\": the release before {} in {} ({})",
            from_name(from.as_deref(), from_target),
            chosen.order.describe(),
            layout::list(&chosen.releases)
        ));
    }
    if let Some(marker) = marker {
        detail.push_str(&format!("; {to} holds {marker}"));
    }
    backout_sdk::Action::new(format!("switch {link} from {} to {to}", from_name(from.as_deref(), from_target)))
        .detail(detail)
}

/// `run`'s summary.
pub fn run_summary(outputs: &Outputs) -> String {
    let Outputs { link, from, to, from_target, to_target, .. } = outputs;
    if !outputs.switched {
        return format!(
            "no change needed: {link} already points to {to} ({}); nothing was written",
            arrow(link, from_target)
        );
    }
    format!("switched {link} from {} to {to} ({})", from_name(from.as_deref(), from_target), arrow(link, to_target))
}

/// `undo`'s summary after switching back.
pub fn undo_summary(outputs: &Outputs) -> String {
    let Outputs { link, from, to, from_target, .. } = outputs;
    format!(
        "switched {link} back from {to} to {} ({})",
        from_name(from.as_deref(), from_target),
        arrow(link, from_target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Chosen;
    use crate::version::Order;

    fn switch(from_target: &str, to: &str, previous: bool) -> Switch {
        let in_place = from_target.trim_start_matches("./") == format!("releases/{to}");
        Switch {
            in_place,
            link: "/app/current".into(),
            releases_dir: "/app/releases".into(),
            grant: "/app".into(),
            from_target: from_target.into(),
            from: from_target.strip_prefix("releases/").map(str::to_owned),
            to: to.into(),
            to_target: if in_place { from_target.into() } else { format!("releases/{to}") },
            chosen_by: previous
                .then(|| Chosen { order: Order::Semver, releases: vec!["1.0.0".into(), "2.0.0".into()] }),
        }
    }

    #[test]
    fn the_plan_shows_from_and_to() {
        let action = plan_action(&switch("releases/1.0.0", "2.0.0", false), Some("REVISION"));
        assert_eq!(action.summary, "switch /app/current from 1.0.0 to 2.0.0");
        assert_eq!(
            action.detail.as_deref(),
            Some("current -> releases/1.0.0 becomes current -> releases/2.0.0; 2.0.0 holds REVISION")
        );
        let action = plan_action(&switch("releases/2.0.0", "1.0.0", true), None);
        assert_eq!(
            action.detail.as_deref(),
            Some(
                "current -> releases/2.0.0 becomes current -> releases/1.0.0; \"previous\": the release before \
                 2.0.0 in semver order (1.0.0, 2.0.0)"
            )
        );
    }

    #[test]
    fn a_link_already_in_place_is_left() {
        let action = plan_action(&switch("./releases/2.0.0", "2.0.0", false), None);
        assert_eq!(action.summary, "leave /app/current at 2.0.0: it already points there");
        assert_eq!(action.detail.as_deref(), Some("current -> ./releases/2.0.0 (nothing to change)"));
        assert!(!Outputs::of(&switch("./releases/2.0.0", "2.0.0", false)).switched);
    }

    #[test]
    fn a_target_that_is_not_a_release_is_shown_as_written() {
        let action = plan_action(&switch("shared/maintenance", "2.0.0", false), None);
        assert_eq!(action.summary, "switch /app/current from `shared/maintenance` to 2.0.0");
    }

    #[test]
    fn outputs_have_the_documented_shape() {
        let outputs = Outputs::of(&switch("releases/1.0.0", "2.0.0", false));
        assert_eq!(
            serde_json::to_value(&outputs).unwrap(),
            serde_json::json!({
                "link": "/app/current",
                "releases_dir": "/app/releases",
                "from": "1.0.0",
                "to": "2.0.0",
                "from_target": "releases/1.0.0",
                "to_target": "releases/2.0.0",
                "switched": true
            })
        );
        assert_eq!(run_summary(&outputs), "switched /app/current from 1.0.0 to 2.0.0 (current -> releases/2.0.0)");
        assert_eq!(
            undo_summary(&outputs),
            "switched /app/current back from 2.0.0 to 1.0.0 (current -> releases/1.0.0)"
        );
    }
}
