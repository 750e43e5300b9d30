//! A step's `with` table: turned into JSON, and every `${…}` in it checked
//! against the runbook (declared vars, earlier steps, granted environment
//! variables) before any plugin sees it; and when the plugin's `plan`
//! refuses it, each problem shown at the key the plugin names.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::capability::Grants;
use crate::diagnostic::Diagnostic;
use crate::plan::ConfigTemplate;
use crate::problems::Problems;
use crate::runbook::StepDef;
use crate::runtime::{Failure, StepErrorKind};
use crate::template::{PluginNamespace, Segment, Template};
use crate::text::did_you_mean;

use super::{Planner, with_span};

impl Planner<'_> {
    /// The `with` table as JSON, every reference in it checked.
    pub(super) fn config(
        &mut self,
        def: &StepDef,
        vars: &BTreeMap<String, String>,
        earlier: &[String],
    ) -> Option<ConfigTemplate> {
        let id = def.id.get_ref().clone();
        let Some(with) = &def.with else {
            return ConfigTemplate::new(serde_json::Value::Object(Default::default()), vec![], false).ok();
        };
        let raw = toml_to_json(&toml::Value::Table(with.get_ref().clone()));
        let mut strings = Vec::new();
        every_string(&raw, &mut strings);
        // Only strings with a `$` can hold a reference.
        strings.retain(|s| s.contains('$'));
        let mut needs_outputs_of: Vec<String> = Vec::new();
        let mut needs_run = false;
        let mut ok = true;
        for text in strings {
            let span = self.span_of_text(&with.span(), &text);
            let template = match Template::parse(&text) {
                Ok(t) => t,
                Err(e) => {
                    self.error(&id, e, &span);
                    ok = false;
                    continue;
                }
            };
            needs_run |= template.needs_run();
            for reference in template.references() {
                match reference {
                    Segment::Var { name, raw } if !vars.contains_key(name) => {
                        let span = self.span_of_text(&with.span(), raw);
                        let known = vars.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                        self.error(&id, format!("unknown var `{name}` in `{raw}`"), &span).hint =
                            Some(if known.is_empty() {
                                "declare it in `[vars]`".into()
                            } else {
                                format!("declared vars: {known}")
                            });
                        ok = false;
                    }
                    Segment::Plugin { namespace: PluginNamespace::Env, name, raw }
                        if !def
                            .grants
                            .as_ref()
                            .is_some_and(|g| g.get_ref().env.iter().any(|e| e.get_ref() == name)) =>
                    {
                        let span = self.span_of_text(&with.span(), raw);
                        self.error(
                            &id,
                            format!("`{raw}` reads environment variable `{name}`, which the step does not grant"),
                            &span,
                        )
                        .hint = Some(format!("add `env = [\"{name}\"]` to `[step.grants]`"));
                        ok = false;
                    }
                    Segment::StepOutput { step, raw, .. } => {
                        let span = self.span_of_text(&with.span(), raw);
                        if step == &id {
                            self.error(&id, format!("`{raw}` refers to this step's own outputs"), &span);
                            ok = false;
                        } else if earlier.contains(step) {
                            if !needs_outputs_of.contains(step) {
                                needs_outputs_of.push(step.clone());
                            }
                        } else if self.parsed.runbook.steps.iter().any(|s| s.id.get_ref() == step) {
                            self.error(&id, format!("`{raw}` refers to step `{step}`, which runs later"), &span).hint =
                                Some("a step can use outputs only of steps above it".into());
                            ok = false;
                        } else {
                            let known = crate::text::backticked(earlier);
                            self.error(&id, format!("`{raw}` refers to unknown step `{step}`"), &span).hint =
                                Some(match (did_you_mean(step, earlier), known.is_empty()) {
                                    (_, true) => "no step runs before this one".into(),
                                    (Some(suggestion), false) => format!("{suggestion} steps before this one: {known}"),
                                    (None, false) => format!("steps before this one: {known}"),
                                });
                            ok = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        if !ok {
            return None;
        }
        // Every string parsed above: this cannot fail, but say so if it does.
        ConfigTemplate::new(raw, needs_outputs_of, needs_run).map_err(|e| self.error(&id, e, &with.span())).ok()
    }

    /// The plugin's `plan` refused the step: one error per problem. An
    /// `invalid-config` problem that names its key by JSON pointer is shown
    /// at that key (the pointer itself left out of the words); any other
    /// problem, and a pointer that leads nowhere in the runbook, at the
    /// `with` table.
    pub(super) fn plan_refused(&mut self, def: &StepDef, failure: &Failure, plugin: &str) {
        let id = def.id.get_ref().clone();
        let hint = format!("`{plugin}` checks the `with` table; see `backout inspect {}`", def.uses.get_ref());
        let problems = match failure {
            Failure::Step { error: StepErrorKind::InvalidConfig, message, .. } => Problems::decode(message).0,
            other => {
                self.error(&id, format!("plan refused: {other}"), &with_span(def)).hint = Some(hint);
                return;
            }
        };
        let index = self.parsed.runbook.steps.iter().position(|d| std::ptr::eq(d, def));
        for problem in problems {
            let span = problem
                .pointer
                .as_ref()
                .zip(index)
                .and_then(|(pointer, index)| self.parsed.span_of_with_key(index, pointer))
                .unwrap_or_else(|| with_span(def));
            self.error(&id, format!("plan refused: invalid config: {}", problem.message), &span).hint =
                Some(hint.clone());
        }
    }

    /// Warns about each `with` string that is a host path inside a directory
    /// grant (written out, or through a var): the plugin sees only the
    /// sandbox, where that path does not exist, so its plan would fail with
    /// "not found". A warning, not an error: a plugin may take a host path
    /// on purpose (a command's argument, a message's text).
    pub(super) fn check_host_paths(&mut self, def: &StepDef, vars: &BTreeMap<String, String>, grants: &Grants) {
        let Some(with) = &def.with else { return };
        let raw = toml_to_json(&toml::Value::Table(with.get_ref().clone()));
        let mut strings = Vec::new();
        every_string(&raw, &mut strings);
        for text in strings {
            // Only what is known now: text and `${vars.*}`.
            let Ok(template) = Template::parse(&text) else { continue };
            if template.references().any(|r| !matches!(r, Segment::Var { .. })) {
                continue;
            }
            let Ok(rendered) = template.render(vars, &BTreeMap::new()) else { continue };
            let Some(inside) = grants.dirs.iter().find_map(|d| {
                let host = d.host.to_str()?;
                let rest = rendered.strip_prefix(host)?;
                let guest = if rest.is_empty() {
                    d.guest.clone()
                } else {
                    let rest = rest.strip_prefix('/')?;
                    if d.guest == "/" { format!("/{rest}") } else { format!("{}/{rest}", d.guest) }
                };
                (host != d.guest).then_some(guest)
            }) else {
                continue;
            };
            let span = self.span_of_text(&with.span(), &text);
            let at = self.at(&span);
            self.problems.push(
                Diagnostic::warning(format!(
                    "`{text}` is a path on the host; the plugin sees only the sandbox, where it does not exist"
                ))
                .in_step(def.id.get_ref())
                .at(at)
                .hint(format!("inside the sandbox this is `{inside}`")),
            );
        }
    }

    /// The span of `text` inside a larger span, for pointing at a reference
    /// inside a `with` table (TOML values inside tables carry no spans).
    fn span_of_text(&self, outer: &Range<usize>, text: &str) -> Range<usize> {
        let source = &self.parsed.source.text;
        let region = source.get(outer.clone()).unwrap_or("");
        match region.find(text) {
            Some(i) => outer.start + i..outer.start + i + text.len(),
            None => outer.clone(),
        }
    }
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

/// Every string in a JSON value (keys aside).
fn every_string(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| every_string(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| every_string(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_become_json() {
        let v: toml::Value = toml::from_str("a = 1\nb = [true, \"x\"]\n[c]\nd = 1.5").unwrap();
        assert_eq!(toml_to_json(&v), serde_json::json!({"a": 1, "b": [true, "x"], "c": {"d": 1.5}}));
    }
}
