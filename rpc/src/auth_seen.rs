//! Which successful authentications are worth an audit event.
//!
//! A bearer token or API key is presented with every request, so recording
//! each success wrote one sealed audit row per request (a third of the
//! writer's work under load) that said nothing the request's own events do
//! not: those carry the principal, client address and request id. A success
//! is recorded the first time a principal authenticates from a client
//! address in each minute; every failure is still recorded.

use parking_lot::Mutex;
use std::{collections::HashMap, net::IpAddr};

/// Most (principal, address) pairs remembered; beyond, successes are
/// recorded every time (the safe side) until the next minute frees room.
const CAP: usize = 16_384;

/// Seconds per window.
const WINDOW_SECS: i64 = 60;

/// Last window each (principal, client address) had a success recorded in.
#[derive(Debug, Default)]
pub struct AuthSeen(Mutex<HashMap<(String, IpAddr), i64>>);

impl AuthSeen {
    /// Whether this success should be recorded (and notes it if so).
    pub fn first_in_window(&self, principal: &str, ip: IpAddr, now_secs: i64) -> bool {
        let window = now_secs.div_euclid(WINDOW_SECS);
        let mut seen = self.0.lock();
        if let Some(w) = seen.get_mut(&(principal.to_owned(), ip)) {
            if *w == window {
                return false;
            }
            *w = window;
            return true;
        }
        if seen.len() >= CAP {
            seen.retain(|_, w| *w == window);
        }
        if seen.len() < CAP {
            seen.insert((principal.to_owned(), ip), window);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_is_recorded_once_per_principal_address_and_minute() {
        let seen = AuthSeen::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(seen.first_in_window("ApiKey:k1", a, 120));
        assert!(!seen.first_in_window("ApiKey:k1", a, 179));
        assert!(seen.first_in_window("ApiKey:k1", b, 150), "another address");
        assert!(
            seen.first_in_window("ApiKey:k2", a, 150),
            "another principal"
        );
        assert!(seen.first_in_window("ApiKey:k1", a, 180), "the next minute");
        assert!(!seen.first_in_window("ApiKey:k1", a, 181));
    }

    #[test]
    fn when_full_successes_are_recorded_rather_than_forgotten() {
        let seen = AuthSeen::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..CAP {
            assert!(seen.first_in_window(&format!("ApiKey:{i}"), a, 60));
        }
        // Full of this minute's pairs: a newcomer is recorded every time.
        assert!(seen.first_in_window("ApiKey:new", a, 61));
        assert!(seen.first_in_window("ApiKey:new", a, 62));
        // The next minute clears the old pairs and remembers again.
        assert!(seen.first_in_window("ApiKey:new", a, 120));
        assert!(!seen.first_in_window("ApiKey:new", a, 121));
        assert!(seen.0.lock().len() <= CAP);
    }
}
