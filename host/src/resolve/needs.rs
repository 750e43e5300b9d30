//! A plugin's needs against the step's grants: a need not granted is an
//! error, a grant not needed a warning (least privilege).

use crate::capability::{self, Grants};
use crate::diagnostic::Diagnostic;
use crate::runbook::StepDef;
use crate::runtime::PluginInfo;

use super::Planner;

impl Planner<'_> {
    /// A need that is not granted is an error; a grant that is not needed is
    /// a warning (least privilege: the runbook should grant no more than needed).
    pub(super) fn check_needs(&mut self, id: &str, def: &StepDef, info: &PluginInfo, grants: &Grants) {
        let at = def.grants.as_ref().map(|g| g.span()).unwrap_or_else(|| def.uses.span());
        for finding in grants.match_needs(&info.name, &info.needs) {
            let diagnostic = match finding {
                capability::Finding::Missing { message, hint } => Diagnostic::error(message).hint(hint),
                capability::Finding::Unneeded { message } => Diagnostic::warning(message),
            };
            self.problems.push(diagnostic.in_step(id).at(self.at(&at)));
        }
    }
}
