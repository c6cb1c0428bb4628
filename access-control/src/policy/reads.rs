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
//! The analysis reads each policy's Cedar text token by token (strings
//! and comments skipped). Every use of the `context` variable must be an
//! attribute access (`context.x`, `context["x"]`) or an attribute test
//! (`context has x`, `context has x.y`); the first attribute is recorded.
//! Any other use (`context` compared, passed, put in a set or a record)
//! makes the whole context relevant, and the slice is judged on every
//! question.

use cedar_policy::PolicySet;
use std::collections::BTreeSet;

/// The context attributes the policies of `set` can read, sorted; `None`
/// when some policy uses the context other than through its attributes,
/// so that no attribute can be left out of a key.
pub(super) fn context_reads(set: &PolicySet) -> Option<Vec<String>> {
    let mut reads = BTreeSet::new();
    for policy in set.policies() {
        policy_reads(&policy.to_string(), &mut reads)?;
    }
    Some(reads.into_iter().collect())
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Str(String),
    Punct(char),
    /// `::`
    Path,
}

/// Cedar text as tokens, without whitespace, comments and annotations'
/// quoting; `None` on text this lexer does not understand (an unclosed
/// string), which leaves the policy opaque.
fn tokens(text: &str) -> Option<Vec<Token<'_>>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
        } else if c == b'"' {
            let mut value = String::new();
            i += 1;
            loop {
                match bytes.get(i)? {
                    b'"' => break,
                    b'\\' => {
                        value.push(*bytes.get(i + 1)? as char);
                        i += 2;
                    }
                    _ => {
                        let ch = text[i..].chars().next()?;
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            i += 1;
            out.push(Token::Str(value));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token::Ident(&text[start..i]));
        } else if text[i..].starts_with("::") {
            out.push(Token::Path);
            i += 2;
        } else {
            let ch = text[i..].chars().next()?;
            out.push(Token::Punct(ch));
            i += ch.len_utf8();
        }
    }
    Some(out)
}

/// Adds the context attributes one policy's text reads; `None` when it
/// uses the context any other way.
fn policy_reads(text: &str, reads: &mut BTreeSet<String>) -> Option<()> {
    let tokens = tokens(text)?;
    for (at, token) in tokens.iter().enumerate() {
        if *token != Token::Ident("context") {
            continue;
        }
        // An attribute or a path segment of that name is not the variable.
        let before = at.checked_sub(1).map(|b| &tokens[b]);
        if matches!(
            before,
            Some(Token::Punct('.') | Token::Path | Token::Ident("has"))
        ) {
            continue;
        }
        let next = |n: usize| tokens.get(at + n);
        let attr = match (next(1), next(2), next(3)) {
            (Some(Token::Punct('.')), Some(Token::Ident(a)), _) => (*a).to_owned(),
            (Some(Token::Punct('[')), Some(Token::Str(a)), Some(Token::Punct(']'))) => a.clone(),
            (Some(Token::Ident("has")), Some(Token::Ident(a)), _) => (*a).to_owned(),
            (Some(Token::Ident("has")), Some(Token::Str(a)), _) => a.clone(),
            _ => return None,
        };
        reads.insert(attr);
    }
    Some(())
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

    /// Indexing by a string, quoted attribute tests, strings and comments
    /// that merely mention the context, and other variables' attributes
    /// or paths of that name.
    #[test]
    fn text_that_only_mentions_the_context_is_not_a_read() {
        let found = reads(
            r#"@id("context.ignored")
               permit (principal, action, resource)
               when {
                 // context.commented is not read
                 context["value_gwei"] > 5 && context has "kind" &&
                 principal has context && resource.owner like "context.*" &&
                 principal.context == "x"
               };"#,
        );
        assert_eq!(
            found,
            Some(["kind", "value_gwei"].map(String::from).to_vec())
        );
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { {"c": context}.c.depth == 0 };"#),
            None
        );
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { context in [] };"#),
            None
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
