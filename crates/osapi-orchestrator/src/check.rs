//! Check mode ([`crate::Orchestrator::check`]): the plan as it runs when
//! nothing may change. Operations that change hosts predict instead
//! (`dry_run` in their job data: a file deploy compares and diffs, a DNS
//! update compares); commands and custom steps are skipped unless marked
//! `.safe_in_check()`; operations that cannot predict are skipped; reads
//! run as usual. Uploads go to content-addressed copies
//! (`<name>.check-<sha256 prefix>`), which the plan's deploys use and
//! which are removed afterwards, so the controller's objects stay as they
//! were.

use std::collections::HashMap;
use std::sync::Arc;

use osapi_api::ops::Operation;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::{Builtin, StepKind, StepSpec};

/// Reason given for steps check mode does not run.
pub(crate) const SKIPPED: &str = "check mode";

/// The plan to run in check mode.
pub(crate) struct CheckPlan {
    pub steps: Arc<[Arc<StepSpec>]>,
    /// Objects uploaded for this check, to remove afterwards.
    pub copies: Vec<String>,
}

/// True for operations that only read.
fn reads_only(op: Operation) -> bool {
    let name = op.as_str();
    name.ends_with(".get") || op == Operation::NetworkPingDo
}

/// The check-mode version of `steps`.
pub(crate) fn prepare(steps: &[Arc<StepSpec>]) -> CheckPlan {
    let mut copies = HashMap::new();
    for spec in steps {
        if let StepKind::Builtin(Builtin::Upload { name, data, .. }) = &spec.kind {
            let sha = Sha256::digest(data);
            let prefix: String = sha.iter().take(6).map(|b| format!("{b:02x}")).collect();
            copies.insert(name.clone(), format!("{name}.check-{prefix}"));
        }
    }
    let steps: Vec<Arc<StepSpec>> = steps
        .iter()
        .map(|spec| {
            let mut spec = (**spec).clone();
            adapt(&mut spec, &copies);
            Arc::new(spec)
        })
        .collect();
    CheckPlan {
        steps: steps.into(),
        copies: copies.into_values().collect(),
    }
}

fn adapt(spec: &mut StepSpec, copies: &HashMap<String, String>) {
    let safe = spec.safe_in_check;
    let skip = match &mut spec.kind {
        StepKind::Builtin(Builtin::Upload { name, .. }) => {
            if let Some(copy) = copies.get(name) {
                *name = copy.clone();
            }
            None
        }
        StepKind::Builtin(_) => None,
        StepKind::Func(_) => (!safe).then(|| SKIPPED.to_string()),
        StepKind::Job { op, data, .. } => match *op {
            op if reads_only(op) => None,
            Operation::FileDeploy => {
                if let Some(fields) = data.as_object_mut() {
                    let object = fields.get("object_name").and_then(Value::as_str);
                    if let Some(copy) = object.and_then(|o| copies.get(o)) {
                        fields.insert("object_name".into(), Value::String(copy.clone()));
                    }
                    fields.insert("dry_run".into(), Value::Bool(true));
                }
                None
            }
            Operation::NetworkDnsUpdate => {
                if let Some(fields) = data.as_object_mut() {
                    fields.insert("dry_run".into(), Value::Bool(true));
                }
                None
            }
            op if op.is_command() => (!safe).then(|| SKIPPED.to_string()),
            op => Some(format!("{SKIPPED}: {op} cannot predict its changes")),
        },
    };
    if skip.is_some() {
        spec.forced_skip = skip;
    }
}
