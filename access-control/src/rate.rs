//! Fair share: token buckets per principal and per organization.
//!
//! Every authenticated request takes one token from its principal's request
//! bucket and one per JSON-RPC call it carries (a batch of 1,000 calls takes
//! 1,000) from its principal's call bucket and from its organization's. A
//! request that would overdraw any bucket is refused whole, with the time
//! until it would fit; it takes nothing. Rates come from the principal's
//! roles (the most generous role that is configured applies), else the
//! default. Refusals are counted per principal and handed out for auditing
//! once per interval ([`RateLimiter::take_reports`]), never one event per
//! refused call: a flood must not become an audit flood.

use crate::principal::Principal;
use parking_lot::Mutex;
use serde::Deserialize;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// One bucket's rate and depth.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per second.
    pub per_s: f64,
    /// Most tokens held (the largest burst, hence the largest batch).
    pub burst: f64,
}

/// Limits for one principal.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalLimits {
    /// HTTP requests (and WebSocket messages).
    pub requests: Rate,
    /// JSON-RPC calls, batch entries counted one by one.
    pub calls: Rate,
}

/// `[rate_limits]` of the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Off: nothing is limited (benchmarks of the bare node only).
    pub enabled: bool,
    /// Limits of a principal none of whose roles is listed in `roles`.
    pub default: PrincipalLimits,
    /// Limits by role name.
    pub roles: HashMap<String, PrincipalLimits>,
    /// Calls of all principals of one organization together.
    pub organization: Rate,
    /// Seconds between audit events about one principal's refusals.
    pub report_interval_s: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let limits = |req: f64, calls: f64| PrincipalLimits {
            requests: Rate {
                per_s: req,
                burst: req * 2.0,
            },
            calls: Rate {
                per_s: calls,
                burst: calls * 2.0,
            },
        };
        Self {
            enabled: true,
            default: limits(100.0, 1_000.0),
            // The least privileged role reads little; machines and the
            // people who run the node submit at chain speed.
            roles: HashMap::from([
                ("counterparty".to_owned(), limits(10.0, 100.0)),
                ("compliance".to_owned(), limits(20.0, 200.0)),
                ("service".to_owned(), limits(20_000.0, 50_000.0)),
                ("operator".to_owned(), limits(20_000.0, 50_000.0)),
                ("admin".to_owned(), limits(20_000.0, 50_000.0)),
            ]),
            organization: Rate {
                per_s: 100_000.0,
                burst: 200_000.0,
            },
            report_interval_s: 10,
        }
    }
}

impl RateLimitConfig {
    /// Problems, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |name: String, r: &Rate| {
            if !(r.per_s.is_finite() && r.per_s > 0.0) {
                p.push(format!("{name}.per_s must be a positive number"));
            }
            if !(r.burst.is_finite() && r.burst >= 1.0) {
                p.push(format!("{name}.burst must be at least 1"));
            }
        };
        let mut all: Vec<(String, &PrincipalLimits)> =
            vec![("rate_limits.default".into(), &self.default)];
        all.extend(
            self.roles
                .iter()
                .map(|(r, l)| (format!("rate_limits.roles.{r}"), l)),
        );
        for (name, l) in all {
            check(format!("{name}.requests"), &l.requests);
            check(format!("{name}.calls"), &l.calls);
        }
        check("rate_limits.organization".into(), &self.organization);
        if self.report_interval_s == 0 {
            p.push("rate_limits.report_interval_s must be at least 1".into());
        }
        p
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_s).min(rate.burst);
        self.at = now;
    }

    /// Time until `n` tokens are there (zero when they are).
    fn wait_for(&self, rate: &Rate, n: f64) -> Option<Duration> {
        if n > rate.burst {
            return None;
        }
        let missing = n - self.tokens;
        Some(if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / rate.per_s)
        })
    }
}

#[derive(Debug)]
struct PrincipalState {
    limits: PrincipalLimits,
    org: String,
    requests: Bucket,
    calls: Bucket,
    refused: u64,
    /// Last report (none yet).
    reported: Option<Instant>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Over the rate: retry after this long.
    Later(Duration),
    /// More calls in one request than the principal's burst: it can never fit.
    TooLarge {
        /// Calls in the request.
        calls: u64,
        /// The largest batch allowed.
        burst: u64,
    },
}

/// Refusals of one principal since its last report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalReport {
    /// `User:…` / `ApiKey:…`.
    pub principal: String,
    /// Its organization.
    pub org: String,
    /// Requests refused.
    pub refused: u64,
}

/// Most principals tracked at once; idle (refilled) ones are dropped first.
const MAX_TRACKED: usize = 100_000;

/// The buckets of every principal and organization seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    principals: HashMap<String, PrincipalState>,
    orgs: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// A limiter with `settings`.
    pub fn new(settings: RateLimitConfig) -> Self {
        Self {
            settings,
            state: Mutex::new(State::default()),
        }
    }

    /// The limits that apply to `principal`.
    pub fn limits_of(&self, principal: &Principal) -> PrincipalLimits {
        principal
            .roles
            .iter()
            .filter_map(|r| self.settings.roles.get(r))
            .copied()
            .max_by(|a, b| a.calls.per_s.total_cmp(&b.calls.per_s))
            .unwrap_or(self.settings.default)
    }

    /// Takes one request and `calls` calls for `principal`, or refuses.
    /// A refusal that should be audited now returns its report.
    pub fn admit(
        &self,
        principal: &Principal,
        calls: u64,
    ) -> Result<(), (Refusal, Option<RefusalReport>)> {
        if !self.settings.enabled {
            return Ok(());
        }
        let limits = self.limits_of(principal);
        self.admit_as(principal.key(), &principal.org, limits, calls)
    }

    /// [`admit`](Self::admit) for a request without credentials (the few
    /// public methods), by client address, at the default limits; all
    /// anonymous clients share the organization bucket `anonymous`.
    pub fn admit_anonymous(
        &self,
        ip: std::net::IpAddr,
        calls: u64,
    ) -> Result<(), (Refusal, Option<RefusalReport>)> {
        if !self.settings.enabled {
            return Ok(());
        }
        self.admit_as(
            format!("anonymous:{ip}"),
            "anonymous",
            self.settings.default,
            calls,
        )
    }

    fn admit_as(
        &self,
        key: String,
        org_name: &str,
        limits: PrincipalLimits,
        calls: u64,
    ) -> Result<(), (Refusal, Option<RefusalReport>)> {
        let now = Instant::now();
        let interval = Duration::from_secs(self.settings.report_interval_s);
        let org_rate = self.settings.organization;
        let mut state = self.state.lock();
        if state.principals.len() >= MAX_TRACKED && !state.principals.contains_key(&key) {
            evict_idle(&mut state, now);
        }
        let State { principals, orgs } = &mut *state;
        let p = principals
            .entry(key.clone())
            .or_insert_with(|| PrincipalState {
                limits,
                org: org_name.to_owned(),
                requests: Bucket::full(&limits.requests, now),
                calls: Bucket::full(&limits.calls, now),
                refused: 0,
                reported: None,
            });
        p.limits = limits;
        p.requests.refill(&limits.requests, now);
        p.calls.refill(&limits.calls, now);
        let org = orgs
            .entry(org_name.to_owned())
            .or_insert_with(|| Bucket::full(&org_rate, now));
        org.refill(&org_rate, now);
        let n = calls.max(1) as f64;
        let refusal = match (
            p.requests.wait_for(&limits.requests, 1.0),
            p.calls.wait_for(&limits.calls, n),
            org.wait_for(&org_rate, n),
        ) {
            (Some(a), Some(b), Some(c)) => {
                let wait = a.max(b).max(c);
                if wait.is_zero() {
                    p.requests.tokens -= 1.0;
                    p.calls.tokens -= n;
                    org.tokens -= n;
                    return Ok(());
                }
                Refusal::Later(wait)
            }
            _ => Refusal::TooLarge {
                calls,
                burst: limits.calls.burst.min(org_rate.burst) as u64,
            },
        };
        p.refused += 1;
        let due = p
            .reported
            .is_none_or(|t| now.saturating_duration_since(t) >= interval);
        let report = due.then(|| {
            p.reported = Some(now);
            RefusalReport {
                principal: key,
                org: p.org.clone(),
                refused: std::mem::take(&mut p.refused),
            }
        });
        Err((refusal, report))
    }

    /// Refusals not yet reported, for the periodic audit summary: each
    /// principal refused since its last report, once.
    pub fn take_reports(&self) -> Vec<RefusalReport> {
        let now = Instant::now();
        let mut state = self.state.lock();
        state
            .principals
            .iter_mut()
            .filter(|(_, p)| p.refused > 0)
            .map(|(key, p)| {
                p.reported = Some(now);
                RefusalReport {
                    principal: key.clone(),
                    org: p.org.clone(),
                    refused: std::mem::take(&mut p.refused),
                }
            })
            .collect()
    }

    /// Seconds between reports.
    pub fn report_interval(&self) -> Duration {
        Duration::from_secs(self.settings.report_interval_s)
    }
}

/// Drops principals whose buckets have refilled and who have nothing to
/// report: forgetting them changes nothing.
fn evict_idle(state: &mut State, now: Instant) {
    state.principals.retain(|_, p| {
        let mut r = p.requests;
        let mut c = p.calls;
        r.refill(&p.limits.requests, now);
        c.refill(&p.limits.calls, now);
        p.refused > 0 || r.tokens < p.limits.requests.burst || c.tokens < p.limits.calls.burst
    });
    if state.orgs.len() > MAX_TRACKED {
        state.orgs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalKind;

    fn principal(id: &str, role: &str, org: &str) -> Principal {
        Principal {
            kind: PrincipalKind::ApiKey,
            id: id.into(),
            roles: [role.to_owned()].into_iter().collect(),
            org: org.into(),
            expires_at: None,
        }
    }

    fn settings() -> RateLimitConfig {
        let l = |req: f64, calls: f64| PrincipalLimits {
            requests: Rate {
                per_s: req,
                burst: req,
            },
            calls: Rate {
                per_s: calls,
                burst: calls,
            },
        };
        RateLimitConfig {
            enabled: true,
            default: l(10.0, 100.0),
            roles: HashMap::from([("counterparty".into(), l(2.0, 10.0))]),
            organization: Rate {
                per_s: 1_000.0,
                burst: 1_000.0,
            },
            report_interval_s: 3_600,
        }
    }

    #[test]
    fn a_principal_over_its_rate_is_refused_with_a_wait_and_others_are_not() {
        let rl = RateLimiter::new(settings());
        let flood = principal("k_flood", "counterparty", "bank-b");
        let other = principal("k_other", "trader", "bank-a");
        rl.admit(&flood, 5).unwrap();
        rl.admit(&flood, 5).unwrap();
        let (refusal, report) = rl.admit(&flood, 1).unwrap_err();
        match refusal {
            Refusal::Later(wait) => {
                assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1))
            }
            other => panic!("{other:?}"),
        }
        // The first refusal is reported at once, the next ones are counted.
        assert_eq!(report.map(|r| r.refused), Some(1));
        for _ in 0..50 {
            let (_, report) = rl.admit(&flood, 1).unwrap_err();
            assert_eq!(report, None);
        }
        for _ in 0..10 {
            rl.admit(&other, 10).unwrap();
        }
        let reports = rl.take_reports();
        assert_eq!(
            reports,
            vec![RefusalReport {
                principal: "ApiKey:k_flood".into(),
                org: "bank-b".into(),
                refused: 50
            }]
        );
        assert!(
            rl.take_reports().is_empty(),
            "each refusal is reported once"
        );
    }

    #[test]
    fn a_batch_larger_than_the_burst_can_never_fit_and_takes_nothing() {
        let rl = RateLimiter::new(settings());
        let p = principal("k", "nobody", "o");
        let (refusal, _) = rl.admit(&p, 101).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::TooLarge {
                calls: 101,
                burst: 100
            }
        );
        rl.admit(&p, 100).unwrap();
    }

    #[test]
    fn an_organization_shares_one_bucket() {
        let mut s = settings();
        s.organization = Rate {
            per_s: 1.0,
            burst: 150.0,
        };
        let rl = RateLimiter::new(s);
        rl.admit(&principal("a", "x", "bank"), 100).unwrap();
        assert!(matches!(
            rl.admit(&principal("b", "x", "bank"), 100),
            Err((Refusal::Later(_), _))
        ));
        rl.admit(&principal("c", "x", "other-bank"), 100).unwrap();
    }

    #[test]
    fn the_most_generous_configured_role_applies() {
        let rl = RateLimiter::new(settings());
        let mut p = principal("k", "counterparty", "o");
        assert_eq!(rl.limits_of(&p).calls.per_s, 10.0);
        p.roles.insert("unlisted".into());
        assert_eq!(rl.limits_of(&p).calls.per_s, 10.0);
        p.roles = ["unlisted".to_owned()].into_iter().collect();
        assert_eq!(rl.limits_of(&p).calls.per_s, 100.0);
        assert!(settings().problems().is_empty());
        let mut bad = settings();
        bad.default.calls.per_s = 0.0;
        assert_eq!(
            bad.problems(),
            vec!["rate_limits.default.calls.per_s must be a positive number"]
        );
    }
}
