//! Where each key of a step's `with` table is in the runbook, kept with the
//! plan, so that an `invalid-config` a plugin returns from `run`, `verify`
//! or `undo` is shown the way `plan`'s is: at its key, not as a `#/…`
//! pointer in the words.
//!
//! At plan time the runbook's text is at hand and the resolver finds the key
//! when a problem names it (`resolve/config.rs`). At run time it is not (and
//! `undo` or `resume` may come from another session), so [`WithKeys`] is
//! computed once per step while resolving, and [`WithKeys::locate`] rewrites
//! a failure before it is journaled: every consumer (the CLI's lines,
//! `show`, the reports, the JSON events) reads the journaled failure.

use crate::diagnostic::Location;
use crate::problems::{Pointer, Problems};
use crate::runbook::Parsed;
use crate::runtime::{Failure, KeyProblem, StepErrorKind};

/// Every key (and array element) of one step's `with` table and where it is.
#[derive(Debug, Clone, Default)]
pub struct WithKeys {
    keys: Vec<(Pointer, Location)>,
}

impl WithKeys {
    /// The keys of the `step`-th `[[step]]`'s `with` table (0-based).
    pub fn of(parsed: &Parsed, step: usize) -> Self {
        Self { keys: parsed.with_keys(step) }
    }

    /// Where `pointer`'s key is, if the runbook has it.
    pub fn find(&self, pointer: &Pointer) -> Option<&Location> {
        self.keys.iter().find(|(p, _)| p == pointer).map(|(_, l)| l)
    }

    /// `failure` as it is recorded: an `invalid-config` whose problems name
    /// their keys gets them in `problems`, and its message each problem's
    /// words followed by its key and place, `` (at `checks[1].url`,
    /// rollback.toml:12:5) `` (the key alone when the runbook does not have
    /// it), the pointers left out. Anything else is returned as it is.
    pub fn locate(&self, failure: &Failure) -> Failure {
        let Failure::Step { error: StepErrorKind::InvalidConfig, message, problems } = failure else {
            return failure.clone();
        };
        if !problems.is_empty() {
            return failure.clone();
        }
        let decoded = Problems::decode(message);
        if decoded.0.iter().all(|p| p.pointer.is_none()) {
            return failure.clone();
        }
        let mut words = Vec::with_capacity(decoded.0.len());
        let mut keyed = Vec::new();
        for problem in decoded.0 {
            let Some(pointer) = problem.pointer.filter(|p| !p.is_root()) else {
                words.push(problem.message);
                continue;
            };
            let key = pointer.dotted();
            let place = self.find(&pointer);
            words.push(match place {
                Some(at) => format!("{} (at `{key}`, {at})", problem.message),
                None => format!("{} (at `{key}`)", problem.message),
            });
            keyed.push(KeyProblem {
                pointer: pointer.to_string(),
                key,
                line: place.map(|l| l.line),
                column: place.map(|l| l.column),
                message: problem.message,
            });
        }
        Failure::Step { error: StepErrorKind::InvalidConfig, message: words.join("; "), problems: keyed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    fn keys() -> WithKeys {
        let text = "version = 1\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"p@1.0.0\"\n[step.with]\nurl = \"x\"\n";
        WithKeys::of(&crate::runbook::parse(SourceFile::new("r.toml", text)).expect("parses"), 0)
    }

    fn invalid(message: &str) -> Failure {
        Failure::Step { error: StepErrorKind::InvalidConfig, message: message.into(), problems: vec![] }
    }

    #[test]
    fn a_keyed_problem_is_shown_at_its_key_without_the_pointer() {
        let located = keys().locate(&invalid("nothing to do; `#/url`: `url` is bad; `#/nope`: `nope` is worse"));
        let Failure::Step { message, problems, .. } = &located else { panic!("{located:?}") };
        assert_eq!(message, "nothing to do; `url` is bad (at `url`, r.toml:7:1); `nope` is worse (at `nope`)");
        assert_eq!(
            problems,
            &[
                KeyProblem {
                    pointer: "/url".into(),
                    key: "url".into(),
                    line: Some(7),
                    column: Some(1),
                    message: "`url` is bad".into()
                },
                KeyProblem {
                    pointer: "/nope".into(),
                    key: "nope".into(),
                    line: None,
                    column: None,
                    message: "`nope` is worse".into()
                },
            ]
        );
        assert_eq!(located.to_string(), format!("invalid config: {message}"));
        // Located once: a journaled failure read back is not changed again.
        assert_eq!(keys().locate(&located), located);
    }

    #[test]
    fn other_failures_are_left_as_they_are() {
        let plain = invalid("`url` is bad");
        assert_eq!(keys().locate(&plain), plain);
        let failed = Failure::Step { error: StepErrorKind::Failed, message: "`#/url`: x".into(), problems: vec![] };
        assert_eq!(keys().locate(&failed), failed);
        let trap = Failure::Trap { message: "`#/url`: x".into() };
        assert_eq!(keys().locate(&trap), trap);
    }
}
