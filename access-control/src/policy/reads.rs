//! Which attributes of the request's context a set of policies can read.
//!
//! A question's answer depends on the principal, the action, the resource
//! and the context. The first two are fixed for a caller's kept answers,
//! the resource is keyed whole; the context changes with every call frame
//! (values, arguments, spend so far), yet most policies read little or
//! none of it. Knowing which attributes the policies of a slice can reach
//! lets an answer be kept under those attributes' values alone: an admin's
//! hundredth oracle update asks what the first asked.
//!
//! The analysis walks each policy's JSON form (Cedar's EST). Every use of
//! `context` must be an attribute access (`context.x`, `context.x.y`) or an
//! attribute test (`context has x`); the first attribute is recorded. Any
//! other use (`context` compared, passed, put in a set) makes the whole
//! context relevant, and the slice is judged on every question.

use cedar_policy::PolicySet;
use serde_json::Value;
use std::collections::BTreeSet;

/// The context attributes the policies of `set` can read, sorted; `None`
/// when some policy uses the context other than through its attributes
/// (or cannot be put in JSON form), so that no attribute can be left out
/// of a key.
pub(super) fn context_reads(set: &PolicySet) -> Option<Vec<String>> {
    let mut reads = BTreeSet::new();
    for policy in set.policies() {
        let json = policy.to_json().ok()?;
        walk(&json, &mut reads).ok()?;
    }
    Some(reads.into_iter().collect())
}

/// The context was used as a whole.
struct Opaque;

fn is_context(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.get("Var").and_then(Value::as_str) == Some("context"))
}

/// Records the attributes of `context` that `v` reads; fails on any other
/// use of `context`.
fn walk(v: &Value, reads: &mut BTreeSet<String>) -> Result<(), Opaque> {
    match v {
        Value::Object(map) => {
            if is_context(v) {
                return Err(Opaque);
            }
            for (key, inner) in map {
                if key == "." || key == "has" {
                    if let Some(attr) = context_attribute(inner) {
                        reads.insert(attr);
                        continue;
                    }
                }
                walk(inner, reads)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|i| walk(i, reads)),
        _ => Ok(()),
    }
}

/// `{"left": {"Var": "context"}, "attr": A}` (or `A` a list, for
/// `context has a.b`): the first attribute named.
fn context_attribute(op: &Value) -> Option<String> {
    let map = op.as_object()?;
    if !map.get("left").is_some_and(is_context) {
        return None;
    }
    match map.get("attr")? {
        Value::String(a) => Some(a.clone()),
        Value::Array(path) => path.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn reads(src: &str) -> Option<Vec<String>> {
        context_reads(&PolicySet::from_str(src).unwrap())
    }

    /// Attribute reads, nested reads and attribute tests are found in
    /// `when` and `unless` alike; scope-only policies read nothing.
    #[test]
    fn attribute_reads_are_collected() {
        assert_eq!(reads("permit (principal, action, resource);"), Some(vec![]));
        let found = reads(
            r#"forbid (principal, action, resource)
               when { context.function == "transferFrom" && context has args.from &&
                      context.args.from != context.signer && resource.is_contract }
               unless { context.depth > 0 };"#,
        );
        let expected = ["args", "depth", "function", "signer"].map(String::from);
        assert_eq!(found, Some(expected.to_vec()));
    }

    /// The context used as a value leaves no attribute safe to leave out.
    #[test]
    fn the_whole_context_is_opaque() {
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { context == {"depth": 0} };"#),
            None
        );
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { [context].contains(context) };"#),
            None
        );
        // Another variable's attribute of the same name is not the context's.
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { resource.depth == 1 };"#),
            Some(vec![])
        );
    }

    /// The shipped policies, per role: an admin's calls read nothing of the
    /// context (only the resource's organization), a trader's read what the
    /// caps and function lists need.
    #[test]
    fn shipped_slices_read_what_their_rules_name() {
        let dir = crate::policy::test_support::shipped_policies_copy();
        let engine = crate::policy::PolicyEngine::load(dir.path()).unwrap();
        let bundle = engine.bundle();
        let slice = |action: &str, role: &str| {
            let roles = [role.to_owned()].into_iter().collect();
            bundle.slices[action]
                .for_roles(&roles)
                .context_reads
                .clone()
        };
        assert_eq!(slice("call", "admin"), Some(vec![]));
        let trader: Vec<String> = [
            "args",
            "depth",
            "function",
            "signer",
            "spent_today_gwei",
            "value_gwei",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(slice("call", "trader"), Some(trader));
        assert_eq!(
            slice("read", "trader"),
            Some(["address_args", "function"].map(String::from).to_vec())
        );
    }
}
