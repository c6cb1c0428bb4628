//! A real OIDC provider (npm `oidc-provider`, see
//! access-control/tests/idp/idp.mjs) started on a free loopback port.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

pub(crate) struct Idp {
    child: Child,
    pub(crate) issuer: String,
    jwks: PathBuf,
}

fn script(name: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../access-control/tests/idp")
        .join(name)
}

pub(crate) use test_support::free_port;

impl Idp {
    /// Starts the IdP; `jwks` holds its signing keys (created if missing).
    pub(crate) fn start(port: u16, jwks: &Path, token_ttl: u64) -> Idp {
        Self::start_signing(port, jwks, token_ttl, "RS256")
    }

    /// Starts the IdP signing access tokens with `alg` (RS256, ES256 or
    /// EdDSA; `jwks` holds a key of each kind).
    pub(crate) fn start_signing(port: u16, jwks: &Path, token_ttl: u64, alg: &str) -> Idp {
        Self::start_args(port, jwks, token_ttl, &["--alg", alg])
    }

    /// Starts the IdP with the web console registered as a public client
    /// redirecting to `redirect` (its sign-in page checks the test users'
    /// passwords).
    pub(crate) fn start_for_console(port: u16, jwks: &Path, redirect: &str) -> Idp {
        Self::start_args(port, jwks, 300, &["--console-redirect", redirect])
    }

    fn start_args(port: u16, jwks: &Path, token_ttl: u64, extra: &[&str]) -> Idp {
        let mut child = Command::new("node")
            .arg(script("idp.mjs"))
            .args(["--port", &port.to_string()])
            .args(extra)
            .arg("--jwks")
            .arg(jwks)
            .env("IDP_TOKEN_TTL", token_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed (deploy/dev/install-peers.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let issuer = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("IdP did not start: {line:?}"))
            .trim()
            .to_owned();
        Idp {
            child,
            issuer,
            jwks: jwks.to_path_buf(),
        }
    }

    /// A token with exactly `claims`, signed by the IdP's own RSA key (or
    /// naming `kid` instead of that key's id): for tokens the IdP would not
    /// issue on request, such as expired ones.
    pub(crate) fn mint(&self, claims: &serde_json::Value, kid: Option<&str>) -> String {
        let mut cmd = Command::new("node");
        cmd.arg(script("mint.mjs"))
            .arg("--jwks")
            .arg(&self.jwks)
            .args(["--claims", &claims.to_string()]);
        if let Some(kid) = kid {
            cmd.args(["--kid", kid]);
        }
        let out = cmd.output().expect("node is installed");
        assert!(
            out.status.success(),
            "mint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// An access token for a confidential client (client_credentials).
    pub(crate) async fn client_token(&self, client: &str, secret: &str, resource: &str) -> String {
        self.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("resource", resource),
        ])
        .await
    }

    /// An access token for a user (test-only password grant of the IdP).
    pub(crate) async fn user_token(&self, user: &str) -> String {
        let password = format!("{user}-pw");
        self.token(&[
            ("grant_type", "password"),
            ("client_id", "web-app"),
            ("client_secret", "web-secret"),
            ("username", user),
            ("password", &password),
            ("resource", "https://prividium.test"),
        ])
        .await
    }

    async fn token(&self, form: &[(&str, &str)]) -> String {
        let resp: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .form(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {resp}"))
            .to_owned()
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
