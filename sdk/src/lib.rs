//! Write a backout rollback step in Rust.
//!
//! A step is a type that implements [`Step`]; [`export_step!`] turns it into a
//! WebAssembly component that exports the `backout:step` contract (see `wit/`
//! at the root of the repository). The SDK does the plumbing: JSON config into
//! your typed `Config`, your typed `Outputs` back into JSON, errors into the
//! contract's `step-error`, logging and progress through the host, and the
//! safe-file helpers every step that writes needs ([`fs`]).
//!
//! ```ignore
//! use backout_sdk::{Action, Info, Needs, Outcome, Step, StepError, export_step};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { path: String }
//!
//! struct Touch;
//!
//! impl Step for Touch {
//!     type Config = Config;
//!     type Outputs = serde_json::Value;
//!     fn describe() -> Info { Info::new("touch", env!("CARGO_PKG_VERSION"), "create an empty file") }
//!     fn plan(c: Config) -> Result<Vec<Action>, StepError> { Ok(vec![Action::new(format!("create {}", c.path))]) }
//!     fn run(c: Config) -> Result<Outcome<Self::Outputs>, StepError> { /* … */ }
//!     fn verify(c: Config, o: Self::Outputs) -> Result<(), StepError> { /* … */ }
//!     fn undo(c: Config, o: Self::Outputs) -> Result<Outcome<Self::Outputs>, StepError> { /* … */ }
//! }
//!
//! export_step!(Touch);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `.wasm` file
//! is already a component.
//!
//! # Surviving a crash
//!
//! backout itself can be killed at any moment, in the middle of `run` or of
//! `undo`. Two calls make a step recoverable:
//!
//! * [`checkpoint()`]: in `run`, once everything `verify` and `undo` need is
//!   known (the safety copy is taken, the digest to be written is computed)
//!   and before the first change a crash could leave behind, record the
//!   outputs `run` would return. After a crash `verify` and `undo` receive
//!   the last checkpoint, whether the change happened or not: `verify` must
//!   fail if it is not entirely in place, and `undo` must succeed without
//!   changing anything when there is nothing to put back.
//! * [`fs::temporary_file()`]: declare every file written under a temporary
//!   name before creating it, so the host removes it if the call never
//!   returns. [`fs::safety_copy`] and [`fs::replace_atomically`] do it for
//!   their own files.
//!
//! Off wasm both keep what they were given in per-thread lists
//! ([`checkpoint::recorded`], [`fs::temporary_file::declared`]) so a
//! plugin's native unit tests can check them.

pub mod checkpoint;
pub mod config;
pub mod exec;
pub mod fs;
pub mod glob;
#[cfg(feature = "http")]
pub mod http;
pub mod log;
pub mod quantity;
pub mod secrets;
pub mod text;
mod types;
pub mod vars;

pub use checkpoint::checkpoint;
pub use config::{Problems, Validate, validated};
pub use serde_json::{Value, json};
pub use types::{Action, Effect, FileAccess, Info, Needs, Outcome, StepError};

/// Bindings generated from `wit/step.wit`. Plugins rarely need them directly;
/// they are public so [`export_step!`] can name them from the plugin's crate.
#[doc(hidden)]
#[allow(missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_bindings",
        default_bindings_module: "backout_sdk::bindings",
    });
}

/// A rollback step. Implement it, then call [`export_step!`] once.
///
/// Every method runs in a fresh instance of the component: nothing survives in
/// memory between calls. Whatever `verify` and `undo` need must be in the
/// outputs `run` returns.
pub trait Step {
    /// The step's configuration, deserialized from the runbook's `with` table.
    /// Use `#[serde(deny_unknown_fields)]` so a misspelled key is an error.
    type Config: serde::de::DeserializeOwned;
    /// What `run` reports; `verify` and `undo` receive it back.
    type Outputs: serde::Serialize + serde::de::DeserializeOwned;

    /// Who the plugin is and what it needs. No effects.
    fn describe() -> Info;

    /// Checks the config and says what `run` would do. Must not change
    /// anything: the host mounts every directory read-only while it runs.
    fn plan(config: Self::Config) -> Result<Vec<Action>, StepError>;

    /// Does the work. Keep a safety copy of anything replaced, and record its
    /// location in the outputs.
    ///
    /// Call [`checkpoint()`] with the outputs before your first irreversible
    /// change (typically: after the safety copy, before the rename over the
    /// live file): if backout is killed after that change, `verify` and
    /// `undo` get the checkpoint instead of outputs `run` never returned. If
    /// `checkpoint` fails, change nothing and return its error.
    fn run(config: Self::Config) -> Result<Outcome<Self::Outputs>, StepError>;

    /// Checks that what `run` did is in place. No effects.
    ///
    /// After a crash `outputs` is the last checkpoint, and the change may
    /// never have happened: verify must fail unless it is entirely in place.
    fn verify(config: Self::Config, outputs: Self::Outputs) -> Result<(), StepError>;

    /// Puts back what `run` replaced, only if the target still holds what
    /// `run` wrote; otherwise refuses with [`StepError::Precondition`].
    ///
    /// Must be idempotent: after a crash it gets the last checkpoint (run
    /// may never have changed anything), and it runs again if backout died
    /// during an earlier undo. When the target already holds what it held
    /// before `run`, undo changes nothing and succeeds, saying there was
    /// nothing to undo.
    fn undo(config: Self::Config, outputs: Self::Outputs) -> Result<Outcome<Self::Outputs>, StepError>;
}

/// Exports a [`Step`] implementation as the component's `backout:step/step`.
///
/// Call it exactly once per plugin crate, at the crate root. It expands to
/// nothing on non-wasm targets, so the plugin's logic can be unit-tested
/// natively with `cargo test` (a native cdylib could not link the contract's
/// export names).
#[macro_export]
macro_rules! export_step {
    ($step:ty) => {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        pub struct __BackoutStepExport;

        #[cfg(target_family = "wasm")]
        impl $crate::bindings::exports::backout::step::step::Guest for __BackoutStepExport {
            fn describe() -> $crate::bindings::backout::step::types::Info {
                $crate::__glue::describe::<$step>()
            }
            fn plan(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::bindings::backout::step::types::Action>,
                $crate::bindings::backout::step::types::StepError,
            > {
                $crate::__glue::plan::<$step>(config)
            }
            fn run(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::bindings::backout::step::types::Outcome,
                $crate::bindings::backout::step::types::StepError,
            > {
                $crate::__glue::run::<$step>(config)
            }
            fn verify(
                config: ::std::string::String,
                outputs: ::std::string::String,
            ) -> ::std::result::Result<(), $crate::bindings::backout::step::types::StepError> {
                $crate::__glue::verify::<$step>(config, outputs)
            }
            fn undo(
                config: ::std::string::String,
                outputs: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::bindings::backout::step::types::Outcome,
                $crate::bindings::backout::step::types::StepError,
            > {
                $crate::__glue::undo::<$step>(config, outputs)
            }
        }

        #[cfg(target_family = "wasm")]
        $crate::bindings::__export_bindings!(__BackoutStepExport with_types_in $crate::bindings);

        // Natively nothing is exported; naming the methods keeps the step's
        // code type-checked and not reported as dead.
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            let _ = <$step as $crate::Step>::describe;
            let _ = <$step as $crate::Step>::plan;
            let _ = <$step as $crate::Step>::run;
            let _ = <$step as $crate::Step>::verify;
            let _ = <$step as $crate::Step>::undo;
        };
    };
}

/// Conversions between the SDK's types and the generated bindings. Not API.
#[doc(hidden)]
pub mod __glue {
    use crate::Step;
    use crate::bindings::backout::step::types as wit;
    use crate::types::{Outcome, StepError};

    fn config<S: Step>(json: &str) -> Result<S::Config, StepError> {
        crate::config::parse(json)
    }

    fn outputs<S: Step>(json: &str) -> Result<S::Outputs, StepError> {
        serde_json::from_str(json)
            .map_err(|e| StepError::InvalidConfig(format!("outputs of the earlier run are not usable: {e}")))
    }

    fn outcome<S: Step>(o: Outcome<S::Outputs>) -> Result<wit::Outcome, wit::StepError> {
        let outputs = serde_json::to_string(&o.outputs)
            .map_err(|e| wit::StepError::Failed(format!("cannot encode outputs: {e}")))?;
        Ok(wit::Outcome { summary: o.summary, outputs })
    }

    pub fn describe<S: Step>() -> wit::Info {
        S::describe().into()
    }

    pub fn plan<S: Step>(config_json: String) -> Result<Vec<wit::Action>, wit::StepError> {
        let actions = S::plan(config::<S>(&config_json)?)?;
        Ok(actions.into_iter().map(Into::into).collect())
    }

    pub fn run<S: Step>(config_json: String) -> Result<wit::Outcome, wit::StepError> {
        outcome::<S>(S::run(config::<S>(&config_json)?)?)
    }

    pub fn verify<S: Step>(config_json: String, outputs_json: String) -> Result<(), wit::StepError> {
        Ok(S::verify(config::<S>(&config_json)?, outputs::<S>(&outputs_json)?)?)
    }

    pub fn undo<S: Step>(config_json: String, outputs_json: String) -> Result<wit::Outcome, wit::StepError> {
        outcome::<S>(S::undo(config::<S>(&config_json)?, outputs::<S>(&outputs_json)?)?)
    }
}
