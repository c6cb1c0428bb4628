//! What is wrong with a policy directory: every problem, each located as
//! precisely as the loader (and the ABI reader it calls) can.

/// One problem in a policy directory, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File the problem is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A policy directory that failed to load; lists every problem.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid policies in {dir}:\n  {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct PolicyError {
    /// Directory.
    pub dir: String,
    /// Each problem.
    pub problems: Vec<Problem>,
}
