//! `${...}` references inside runbook strings.
//!
//! Three kinds are substituted by the host: `${vars.NAME}`, known before
//! anything runs; `${steps.ID.outputs.KEY}` (KEY may be a dotted path
//! into the outputs object), known only once step ID has run; and
//! `${run.status}` / `${run.failed_step}`, the run's state so far, for steps
//! that run whatever happened (`always = true`) to report it. Two more are
//! handed to the plugin verbatim, to be expanded inside its sandbox:
//! `${env.NAME}` (NAME must be in the step's `env` grant: the value is a
//! secret, and keeping it out of the config keeps it out of plans, reports
//! and the journal) and `${captures.NAME}` (values a plugin saves while it
//! runs, such as smoke-test's captures). `$$` writes a literal `$`.
//! Anything else inside `${...}` is an error: a typo must not pass through
//! as literal text into a production config.

use std::collections::BTreeMap;

/// One piece of a parsed string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Var {
        name: String,
        raw: String,
    },
    StepOutput {
        step: String,
        path: Vec<String>,
        raw: String,
    },
    /// `${run.status}` or `${run.failed_step}`.
    Run {
        field: RunField,
        raw: String,
    },
    /// `${env.NAME}` or `${captures.NAME}`: passed to the plugin as written.
    Plugin {
        namespace: PluginNamespace,
        name: String,
        raw: String,
    },
}

/// What `${run.…}` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunField {
    /// The run's state so far: `succeeded` until something fails, then
    /// `failed`, `undone`, `needs-attention`, `interrupted` or `timed-out`.
    Status,
    /// The id of the step whose failure decided the state, or empty.
    FailedStep,
}

/// The values of `${run.…}` when a step's config is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub status: String,
    pub failed_step: String,
}

impl RunInfo {
    /// What a step sees when nothing has gone wrong (also what `plan` shows).
    pub fn so_far_so_good() -> Self {
        Self { status: "succeeded".into(), failed_step: String::new() }
    }
}

/// References a plugin expands itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginNamespace {
    /// A granted environment variable, read inside the sandbox.
    Env,
    /// A value the plugin captured earlier in the same call.
    Captures,
}

/// A string split into literal text and references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Segment>);

impl Template {
    /// Parses `text`. Errors name the offending reference.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("$$") {
                literal.push('$');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unterminated `${{` in `{text}`; write `$$` for a literal `$`"))?;
                let inner = &after[..end];
                let raw = format!("${{{inner}}}");
                if !literal.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut literal)));
                }
                segments.push(parse_reference(inner, raw)?);
                rest = &after[end + 1..];
            } else {
                literal.push('$');
                rest = &rest[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Self(segments))
    }

    pub fn references(&self) -> impl Iterator<Item = &Segment> {
        self.0.iter().filter(|s| !matches!(s, Segment::Text(_)))
    }

    /// Whether the string needs outputs of earlier steps.
    pub fn needs_outputs(&self) -> bool {
        self.0.iter().any(|s| matches!(s, Segment::StepOutput { .. }))
    }

    /// Whether the string reads `${run.…}`.
    pub fn needs_run(&self) -> bool {
        self.0.iter().any(|s| matches!(s, Segment::Run { .. }))
    }

    /// Substitutes references. `vars` must hold every var; `outputs` the
    /// outputs of every step referenced (missing ones are errors).
    /// `${run.…}` renders as in a run where nothing has failed.
    pub fn render(
        &self,
        vars: &BTreeMap<String, String>,
        outputs: &BTreeMap<String, serde_json::Value>,
    ) -> Result<String, String> {
        self.render_in_run(vars, outputs, &RunInfo::so_far_so_good())
    }

    /// [`Template::render`] with the run's state for `${run.…}`.
    pub fn render_in_run(
        &self,
        vars: &BTreeMap<String, String>,
        outputs: &BTreeMap<String, serde_json::Value>,
        run: &RunInfo,
    ) -> Result<String, String> {
        let mut out = String::new();
        // Where the references the runbook wrote for the plugin start.
        let mut written = Vec::new();
        for segment in &self.0 {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var { name, raw } => {
                    out.push_str(vars.get(name).ok_or_else(|| unknown_var(name, raw, vars))?);
                }
                Segment::StepOutput { step, path, raw } => {
                    let value =
                        outputs.get(step).ok_or_else(|| format!("step `{step}` has no outputs yet for `{raw}`"))?;
                    out.push_str(&lookup(value, path).map_err(|e| format!("`{raw}`: {e}"))?);
                }
                Segment::Run { field: RunField::Status, .. } => out.push_str(&run.status),
                Segment::Run { field: RunField::FailedStep, .. } => out.push_str(&run.failed_step),
                Segment::Plugin { raw, .. } => {
                    written.push(out.len());
                    out.push_str(raw);
                }
            }
        }
        if let Some(live) = plugin_references(&out).into_iter().find(|(start, _)| !written.contains(start)) {
            return Err(format!(
                "`{}` would reach the plugin as a live reference, though the runbook did not write it as one \
                 (it came from a var, an output or `$$`); substituted text stays literal, so it is refused",
                live.1
            ));
        }
        Ok(out)
    }
}

/// Every `${env.NAME}` and `${captures.NAME}` a plugin would expand in
/// `text` (the SDKs' grammar, a little wider: any name), with its start.
/// The plugins have no escape for them, so the host must never produce one
/// the runbook did not write.
fn plugin_references(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("${") {
        let start = from + i;
        let Some(len) = text[start + 2..].find('}') else { break };
        let inner = text[start + 2..start + 2 + len].trim();
        if inner.starts_with("env.") || inner.starts_with("captures.") {
            found.push((start, text[start..start + 3 + len].to_string()));
        }
        from = start + 1;
    }
    found
}

fn parse_reference(inner: &str, raw: String) -> Result<Segment, String> {
    let parts: Vec<&str> = inner.trim().split('.').collect();
    let valid = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !parts.iter().all(valid) {
        return Err(format!("malformed reference `{raw}`"));
    }
    match parts.as_slice() {
        ["vars", name] => Ok(Segment::Var { name: name.to_string(), raw }),
        ["env", name] => Ok(Segment::Plugin { namespace: PluginNamespace::Env, name: name.to_string(), raw }),
        ["captures", name] => Ok(Segment::Plugin { namespace: PluginNamespace::Captures, name: name.to_string(), raw }),
        ["run", "status"] => Ok(Segment::Run { field: RunField::Status, raw }),
        ["run", "failed_step"] => Ok(Segment::Run { field: RunField::FailedStep, raw }),
        ["run", ..] => {
            Err(format!("unknown reference `{raw}`; a run has `${{run.status}}` and `${{run.failed_step}}`"))
        }
        ["steps", step, "outputs", path @ ..] if !path.is_empty() => {
            Ok(Segment::StepOutput { step: step.to_string(), path: path.iter().map(|s| s.to_string()).collect(), raw })
        }
        ["steps", ..] => Err(format!("malformed reference `{raw}`; write `${{steps.<id>.outputs.<key>}}`")),
        _ => Err(format!(
            "unknown reference `{raw}`; use `${{vars.<name>}}`, `${{steps.<id>.outputs.<key>}}`, \
             `${{run.status}}`, `${{run.failed_step}}`, `${{env.<granted variable>}}` or `${{captures.<name>}}`"
        )),
    }
}

/// Follows a dotted path into a JSON value; strings render bare, other
/// scalars as JSON; objects and arrays are refused (a config string cannot
/// hold them unambiguously).
fn lookup(value: &serde_json::Value, path: &[String]) -> Result<String, String> {
    let mut current = value;
    for (i, key) in path.iter().enumerate() {
        current = match current {
            serde_json::Value::Object(map) => map.get(key),
            serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|n| items.get(n)),
            _ => None,
        }
        .ok_or_else(|| {
            let at = if i == 0 { "the outputs".to_string() } else { format!("`{}`", path[..i].join(".")) };
            let known = match current {
                serde_json::Value::Object(map) => {
                    let keys: Vec<&String> = map.keys().collect();
                    let suggestion = backout_registry::text::did_you_mean(key, keys.iter().copied())
                        .map(|s| format!("; {s}"))
                        .unwrap_or_default();
                    format!("{suggestion}; known keys: {}", backout_registry::text::backticked(keys.iter().copied()))
                }
                _ => String::new(),
            };
            format!("no key `{key}` in {at}{known}")
        })?;
    }
    match current {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Null => Ok(String::new()),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Ok(current.to_string()),
        _ => Err("is an object or a list, not a single value".to_string()),
    }
}

/// `unknown var `x` in `${vars.x}``, with the vars the runbook does declare.
fn unknown_var(name: &str, raw: &str, vars: &BTreeMap<String, String>) -> String {
    if vars.is_empty() {
        return format!("unknown var `{name}` in `{raw}`; no vars are declared (add them under `[vars]`)");
    }
    let declared = vars.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    format!("unknown var `{name}` in `{raw}`; declared vars: {declared}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_vars_and_outputs_are_split() {
        let t = Template::parse("a ${vars.x} b ${steps.s1.outputs.path} $$5").unwrap();
        assert_eq!(t.0.len(), 5);
        assert!(t.needs_outputs());
        let vars = BTreeMap::from([("x".to_string(), "X".to_string())]);
        let outputs = BTreeMap::from([("s1".to_string(), json!({"path": "/p"}))]);
        assert_eq!(t.render(&vars, &outputs).unwrap(), "a X b /p $5");
    }

    #[test]
    fn env_and_captures_reach_the_plugin_verbatim() {
        let t = Template::parse("Bearer ${env.API_KEY} ${captures.id}").unwrap();
        assert!(!t.needs_outputs());
        assert_eq!(t.render(&BTreeMap::new(), &BTreeMap::new()).unwrap(), "Bearer ${env.API_KEY} ${captures.id}");
    }

    #[test]
    fn run_references_render_the_state_so_far() {
        let t = Template::parse("rollback ${run.status} at ${run.failed_step}").unwrap();
        assert!(t.needs_run() && !t.needs_outputs());
        let none = BTreeMap::new();
        let run = RunInfo { status: "undone".into(), failed_step: "restore-db".into() };
        assert_eq!(t.render_in_run(&BTreeMap::new(), &none, &run).unwrap(), "rollback undone at restore-db");
        assert_eq!(t.render(&BTreeMap::new(), &none).unwrap(), "rollback succeeded at ");
        assert!(Template::parse("${run.host}").unwrap_err().contains("`${run.status}` and `${run.failed_step}`"));
    }

    #[test]
    fn substituted_text_never_becomes_a_live_plugin_reference() {
        let vars = BTreeMap::from([("x".to_string(), "${env.API_KEY}".to_string())]);
        let outputs = BTreeMap::from([("s".to_string(), json!({"note": "${ captures.token }"}))]);
        let render = |t: &str| Template::parse(t).unwrap().render(&vars, &outputs);
        assert!(
            render("${vars.x}").unwrap_err().contains("`${env.API_KEY}` would reach the plugin as a live reference")
        );
        assert!(render("id ${steps.s.outputs.note}").unwrap_err().contains("live reference"));
        assert!(render("$${env.API_KEY}").unwrap_err().contains("live reference"), "`$$` makes text, not a reference");
        // What the runbook wrote as a reference stays one; other `${…}` text is harmless.
        assert_eq!(render("Bearer ${env.API_KEY} $${other}").unwrap(), "Bearer ${env.API_KEY} ${other}");
    }

    #[test]
    fn a_lone_dollar_is_literal() {
        let t = Template::parse("cost $5").unwrap();
        assert_eq!(t.render(&BTreeMap::new(), &BTreeMap::new()).unwrap(), "cost $5");
    }

    #[test]
    fn unknown_and_malformed_references_are_errors() {
        assert!(Template::parse("${secrets.HOME}").unwrap_err().contains("unknown reference `${secrets.HOME}`"));
        assert!(Template::parse("${env.A.B}").unwrap_err().contains("unknown reference"));
        assert!(Template::parse("${steps.a.path}").unwrap_err().contains("malformed reference"));
        assert!(Template::parse("${vars.a").unwrap_err().contains("unterminated"));
        assert!(Template::parse("${vars.a b}").unwrap_err().contains("malformed"));
    }

    #[test]
    fn an_unknown_var_is_named_with_the_declared_ones() {
        let vars = BTreeMap::from([("app".to_string(), "/srv/app".to_string()), ("db".to_string(), "x".into())]);
        let e = Template::parse("${vars.appdir}/.env").unwrap().render(&vars, &BTreeMap::new()).unwrap_err();
        assert_eq!(e, "unknown var `appdir` in `${vars.appdir}`; declared vars: `app`, `db`");
        let e = Template::parse("${vars.appdir}").unwrap().render(&BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e, "unknown var `appdir` in `${vars.appdir}`; no vars are declared (add them under `[vars]`)");
    }

    #[test]
    fn nested_output_paths_and_missing_keys() {
        let outputs = BTreeMap::from([("s".to_string(), json!({"a": {"b": 3}, "l": ["x"]}))]);
        let render = |t: &str| Template::parse(t).unwrap().render(&BTreeMap::new(), &outputs);
        assert_eq!(render("${steps.s.outputs.a.b}").unwrap(), "3");
        assert_eq!(render("${steps.s.outputs.l.0}").unwrap(), "x");
        let e = render("${steps.s.outputs.c}").unwrap_err();
        assert!(e.contains("no key `c`") && e.contains("`a`, `l`"), "{e}");
        assert!(!e.contains("did you mean"), "nothing is close to `c`: {e}");
        let outputs = BTreeMap::from([("s".to_string(), json!({"backup_path": "/b", "bytes": 3}))]);
        let e = Template::parse("${steps.s.outputs.backup_pth}").unwrap().render(&BTreeMap::new(), &outputs);
        assert_eq!(
            e.unwrap_err(),
            "`${steps.s.outputs.backup_pth}`: no key `backup_pth` in the outputs; did you mean `backup_path`?; \
             known keys: `backup_path`, `bytes`"
        );
        assert!(render("${steps.s.outputs.a}").unwrap_err().contains("object"));
    }
}
