//! Reading a policy directory: schema, policies and ABIs, all checked before
//! anything is swapped in.

use super::{
    abi::AbiRegistry,
    error::{PolicyError, Problem},
    slice::{self, ActionSlice},
};
use cedar_policy::{Entities, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

/// Name of the schema file inside a policy directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// Sub-directory of registered contract ABIs.
pub const ABI_DIR: &str = "abi";

/// A loaded, validated policy directory.
#[derive(Debug)]
pub struct PolicyBundle {
    /// All policies, each with its `@id` as policy id.
    pub set: PolicySet,
    /// The schema's action entities (method families are action groups).
    pub actions: Entities,
    /// Per action: the policies that can apply and the action's entities.
    pub slices: HashMap<String, ActionSlice>,
    /// Function signatures of registered contract ABIs.
    pub abi: AbiRegistry,
    /// Where each rule id was defined (`file:line`).
    pub origins: BTreeMap<String, String>,
    /// SHA-256 over every file read, to tell versions apart in audit records.
    pub digest: String,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The first labelled offset of a diagnostic, as a line number.
fn diag_line(src: &str, d: &dyn Diagnostic) -> Option<usize> {
    d.labels()
        .and_then(|mut l| l.next())
        .map(|l| line_of(src, l.offset()))
}

fn diag_message(d: &dyn Diagnostic, fallback: String) -> String {
    match d.help() {
        Some(h) => format!("{fallback} ({h})"),
        None => fallback,
    }
}

/// Loads and validates `dir`: `schema.cedarschema`, every `*.cedar` file
/// (each policy must carry a unique `@id("…")`), and `abi/*.json`.
pub fn load_dir(dir: &Path) -> Result<PolicyBundle, PolicyError> {
    let mut problems = Vec::new();
    let mut hasher = Sha256::new();
    let shown = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    let fail = |problems: Vec<Problem>| PolicyError {
        dir: dir.display().to_string(),
        problems,
    };
    let schema_path = dir.join(SCHEMA_FILE);
    let schema_src = std::fs::read_to_string(&schema_path).map_err(|e| {
        fail(vec![Problem {
            file: SCHEMA_FILE.into(),
            line: None,
            message: format!("cannot read schema: {e}"),
        }])
    })?;
    hasher.update(&schema_src);
    let schema = match Schema::from_cedarschema_str(&schema_src) {
        Ok((s, _warnings)) => s,
        Err(e) => {
            return Err(fail(vec![Problem {
                file: SCHEMA_FILE.into(),
                line: diag_line(&schema_src, &e),
                message: diag_message(&e, e.to_string()),
            }]))
        }
    };
    let actions = schema.action_entities().map_err(|e| {
        fail(vec![Problem {
            file: SCHEMA_FILE.into(),
            line: None,
            message: e.to_string(),
        }])
    })?;
    let validator = Validator::new(schema);

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            fail(vec![Problem {
                file: ".".into(),
                line: None,
                message: e.to_string(),
            }])
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    files.sort();
    if files.is_empty() {
        problems.push(Problem {
            file: ".".into(),
            line: None,
            message: "no *.cedar policy files: everything would be denied".into(),
        });
    }

    let mut set = PolicySet::new();
    let mut origins = BTreeMap::new();
    for path in &files {
        let file = shown(path);
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem {
                    file,
                    line: None,
                    message: e.to_string(),
                });
                continue;
            }
        };
        hasher.update(file.as_bytes());
        hasher.update(&src);
        let parsed: PolicySet = match src.parse() {
            Ok(p) => p,
            Err(e) => {
                let e: cedar_policy::ParseErrors = e;
                for err in e.iter() {
                    problems.push(Problem {
                        file: file.clone(),
                        line: diag_line(&src, err),
                        message: diag_message(err, err.to_string()),
                    });
                }
                continue;
            }
        };
        // Validate this file alone so errors point into it.
        let result = validator.validate(&parsed, ValidationMode::Strict);
        for err in result.validation_errors() {
            problems.push(Problem {
                file: file.clone(),
                line: diag_line(&src, err),
                message: diag_message(err, err.to_string()),
            });
        }
        for policy in parsed.policies() {
            let Some(id) = policy.annotation("id").map(str::to_owned) else {
                problems.push(Problem {
                    file: file.clone(),
                    line: None,
                    message: "policy has no @id(\"…\") annotation: every rule needs a stable id"
                        .into(),
                });
                continue;
            };
            let line = src
                .find(&format!("@id(\"{id}\")"))
                .map(|o| line_of(&src, o))
                .unwrap_or(0);
            if id == super::DEFAULT_DENY {
                problems.push(Problem {
                    file: file.clone(),
                    line: Some(line),
                    message: format!("@id(\"{id}\") is reserved"),
                });
                continue;
            }
            let here = format!("{file}:{line}");
            if let Some(first) = origins.get(&id) {
                problems.push(Problem {
                    file: file.clone(),
                    line: Some(line),
                    message: format!("duplicate @id(\"{id}\"), first defined at {first}"),
                });
                continue;
            }
            let renamed: Policy = policy.new_id(PolicyId::new(&id));
            if let Err(e) = set.add(renamed) {
                problems.push(Problem {
                    file: file.clone(),
                    line: Some(line),
                    message: e.to_string(),
                });
                continue;
            }
            origins.insert(id, here);
        }
    }

    let abi = match AbiRegistry::load_dir(&dir.join(ABI_DIR), &mut hasher) {
        Ok(a) => a,
        Err(mut p) => {
            problems.append(&mut p);
            AbiRegistry::default()
        }
    };
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    Ok(PolicyBundle {
        slices: slice::by_action(&set, &actions),
        set,
        actions,
        abi,
        origins,
        digest: hex::encode(hasher.finalize()),
    })
}
