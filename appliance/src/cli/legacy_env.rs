//! The old `APPLIANCE_*` environment variables. Every setting the binary
//! reads from the environment is named `PRIVIDIUM_*`; deployments written
//! before the rename keep working, with a warning naming the new variable,
//! until their unit files and manifests are updated.

/// Settings that were read from `APPLIANCE_<NAME>` and are now read from
/// `PRIVIDIUM_<NAME>`.
const RENAMED: [&str; 5] = ["CONFIG", "DATA_DIR", "LOG", "METRICS_ADDR", "RPC_ADDR"];

/// What to do about one old variable found set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The old name, as found.
    pub old: String,
    /// The name read now.
    pub new: String,
    /// The value to give `new`; `None` when `new` is set already and wins.
    pub value: Option<String>,
}

impl Adoption {
    /// The warning an operator sees.
    pub fn warning(&self) -> String {
        match self.value {
            Some(_) => format!(
                "{} is deprecated and will stop working in a later release: set {} instead",
                self.old, self.new
            ),
            None => format!(
                "{} is deprecated and ignored because {} is set as well: remove {}",
                self.old, self.new, self.old
            ),
        }
    }
}

/// Which old variables in `env` (name, value pairs) are set, and whether
/// their values carry over.
pub fn adoptions(env: impl IntoIterator<Item = (String, String)>) -> Vec<Adoption> {
    let env: std::collections::BTreeMap<String, String> = env.into_iter().collect();
    RENAMED
        .iter()
        .filter_map(|name| {
            let old = format!("APPLIANCE_{name}");
            let new = format!("PRIVIDIUM_{name}");
            // An empty value counts as unset, as clap reads it.
            let set = |name: &str| env.get(name).filter(|v| !v.is_empty());
            let value = set(&old)?;
            Some(Adoption {
                value: set(&new).is_none().then(|| value.clone()),
                old,
                new,
            })
        })
        .collect()
}

/// Carries the process's old variables over to their new names. Runs first
/// thing in `main`, while the process has one thread (changing the
/// environment is unsound once others may read it). Returns what was found,
/// to be logged once logging is up.
pub fn adopt() -> Vec<Adoption> {
    // Non-UTF-8 values are left alone: clap would refuse them under either
    // name.
    let found = adoptions(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    for a in &found {
        if let Some(value) = &a.value {
            std::env::set_var(&a.new, value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn old_names_carry_over_unless_the_new_one_is_set() {
        let found = adoptions(env(&[
            ("APPLIANCE_LOG", "debug"),
            ("APPLIANCE_DATA_DIR", "/old"),
            ("PRIVIDIUM_DATA_DIR", "/new"),
            ("APPLIANCE_RPC_ADDR", "127.0.0.1:1"),
            ("PRIVIDIUM_RPC_ADDR", ""),
            ("APPLIANCE_CONFIG", ""),
            ("APPLIANCE_UNKNOWN", "x"),
            ("PATH", "/bin"),
        ]));
        assert_eq!(
            found,
            vec![
                Adoption {
                    old: "APPLIANCE_DATA_DIR".into(),
                    new: "PRIVIDIUM_DATA_DIR".into(),
                    value: None,
                },
                Adoption {
                    old: "APPLIANCE_LOG".into(),
                    new: "PRIVIDIUM_LOG".into(),
                    value: Some("debug".into()),
                },
                Adoption {
                    old: "APPLIANCE_RPC_ADDR".into(),
                    new: "PRIVIDIUM_RPC_ADDR".into(),
                    value: Some("127.0.0.1:1".into()),
                },
            ]
        );
        assert!(found[0]
            .warning()
            .contains("ignored because PRIVIDIUM_DATA_DIR"));
        assert!(found[1].warning().contains("set PRIVIDIUM_LOG instead"));
        assert!(adoptions(env(&[("PRIVIDIUM_LOG", "info")])).is_empty());
    }
}
