//! Selective disclosure after settlement: a compliance officer asks the
//! node for a balance or a storage word at the end of a settled batch, a
//! regulator checks the file with the contract alone, and every edit of a
//! file is caught.

use super::{cli, cli_ok, predicate_guest, TOKEN_UNITS};
use crate::common::{bin, wait_key_accepted, Node};
use alloy_primitives::{Address, B256, U256};
use serde_json::json;
use std::{path::Path, process::Command};

/// Disclosures at the end of settled batch 1: a compliance officer issues
/// them through the node; a regulator checks them with the file and the
/// contract alone, and every change to a file is caught.
pub(super) struct Disclosed<'a> {
    pub(super) node: &'a Node,
    pub(super) data: &'a Path,
    pub(super) anvil: &'a str,
    pub(super) contract: &'a str,
    pub(super) tmp: &'a Path,
}

/// A named edit of a disclosure file.
type Change = (&'static str, fn(&mut serde_json::Value));

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Disclosed<'_> {
    async fn officer(&self) -> String {
        let dir = self.data.to_str().unwrap();
        let officer = cli_ok(&[
            "keys",
            "create",
            "--data-dir",
            dir,
            "--role",
            "compliance",
            "--org",
            "bank",
        ]);
        wait_key_accepted(self.node, &officer).await;
        officer
    }

    /// `prividium disclose KIND ARGS --out OUT` as `token`.
    fn disclose(&self, token: &str, kind_and_args: &[&str], out: &Path) -> std::process::Output {
        Command::new(bin())
            .arg("disclose")
            .args(kind_and_args)
            .args(["--rpc", self.node.dev["rpc_url"].as_str().unwrap()])
            .args(["--ca-cert", self.node.dev["ca_cert"].as_str().unwrap()])
            .arg("--out")
            .arg(out)
            .env("PRIVIDIUM_TOKEN", token)
            .env("PRIVIDIUM_LOG", "warn")
            .output()
            .unwrap()
    }

    fn verify(&self, path: &Path) -> std::process::Output {
        cli(&[
            "verify-disclosure",
            path.to_str().unwrap(),
            "--settlement-rpc",
            self.anvil,
            "--contract",
            self.contract,
        ])
    }

    /// Each change to `file` must make `verify-disclosure` fail.
    fn assert_changes_fail(&self, file: &Path, changes: &[Change]) {
        let original: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        for (what, change) in changes {
            let mut d = original.clone();
            change(&mut d);
            let path = self.tmp.join(format!("tampered-{what}.json"));
            std::fs::write(&path, serde_json::to_vec(&d).unwrap()).unwrap();
            let bad = self.verify(&path);
            assert!(!bad.status.success(), "a changed {what} verified");
            assert!(
                stderr(&bad).contains("does NOT verify"),
                "{what}: {}",
                stderr(&bad)
            );
        }
    }

    /// A payee's ETH balance, value shown, with Merkle proofs.
    pub(super) async fn exact_balance(&self, payee: Address, last_block: u64) {
        let officer = self.officer().await;
        let payee_hex = payee.to_string();
        let file = self.tmp.join("disclosure.json");
        let args = ["balance", "--account", &payee_hex, "--batch", "1"];
        let issued = self.disclose(&officer, &args, &file);
        assert!(issued.status.success(), "{}", stderr(&issued));
        let ok = self.verify(&file);
        assert!(ok.status.success(), "{}", stderr(&ok));
        // The value is the chain's own answer at the batch's last block.
        let balance = self
            .node
            .rpc("eth_getBalance", json!([payee, format!("{last_block:#x}")]))
            .await["result"]
            .as_str()
            .unwrap()
            .to_string();
        let wei = U256::from_str_radix(balance.trim_start_matches("0x"), 16).unwrap();
        assert!(wei > U256::ZERO);
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(
            stdout.starts_with(&format!(
                "valid: {payee} held {wei} wei at the end of batch 1"
            )),
            "{stdout}"
        );

        // Any change fails: the value, the account, a proof node, the
        // batch, the opening of the commitment.
        self.assert_changes_fail(
            &file,
            &[
                ("value", |d| d["statement"]["value"] = json!("0x1")),
                ("account", |d| {
                    d["statement"]["account"] = json!(Address::repeat_byte(7))
                }),
                ("proof", |d| {
                    let node = d["proof"]["accountProof"][0].as_str().unwrap().to_string();
                    let last = if node.ends_with('0') { "1" } else { "0" };
                    d["proof"]["accountProof"][0] =
                        json!(format!("{}{last}", &node[..node.len() - 1]));
                }),
                ("batch", |d| d["anchor"]["batch"] = json!(2)),
                ("root", |d| {
                    d["anchor"]["blockHash"] = json!(B256::repeat_byte(1))
                }),
            ],
        );

        // Batch 2 is not settled: nothing is disclosed against it. An admin
        // may not disclose at all (separation of duties).
        let args = ["balance", "--account", &payee_hex, "--batch", "2"];
        let refused = self.disclose(&officer, &args, &self.tmp.join("unsettled.json"));
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("batch 2 is not settled"),
            "{}",
            stderr(&refused)
        );
        let admin = self.node.dev["api_key"].as_str().unwrap();
        let args = ["balance", "--account", &payee_hex, "--batch", "1"];
        let refused = self.disclose(admin, &args, &self.tmp.join("admin.json"));
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("default-deny"),
            "{}",
            stderr(&refused)
        );

        // Issuing is audited, with the account and the batch.
        let q = cli_ok(&[
            "audit",
            "query",
            "--data-dir",
            self.data.to_str().unwrap(),
            "--action",
            "disclosure.issued",
            "--format",
            "csv",
        ]);
        assert_eq!(q.matches(&format!("Account:{payee}")).count(), 1, "{q}");
    }

    /// A token balance read from the balances mapping (BankToken: slot 3),
    /// then "at least X" proven by the predicate program without the
    /// balance or the proofs.
    pub(super) async fn token_balance_bound_by_the_predicate_program(
        &self,
        token: Address,
        payee: Address,
    ) {
        let officer = self.officer().await;
        let exact = self.tmp.join("token-balance.json");
        let (token_hex, payee_hex) = (token.to_string(), payee.to_string());
        let args = [
            "token-balance",
            "--account",
            &payee_hex,
            "--token",
            &token_hex,
            "--balances-slot",
            "3",
            "--batch",
            "1",
        ];
        let issued = self.disclose(&officer, &args, &exact);
        assert!(issued.status.success(), "{}", stderr(&issued));
        let ok = self.verify(&exact);
        assert!(ok.status.success(), "{}", stderr(&ok));
        assert!(
            String::from_utf8_lossy(&ok.stdout).contains(&format!(
                "held {TOKEN_UNITS} units of token {token} (balances mapping at slot 3)"
            )),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );

        let (guest, published) = predicate_guest();
        let zk = self.tmp.join("at-least.json");
        let prove = |threshold: u64, out: &Path| {
            cli(&[
                "prove-disclosure",
                exact.to_str().unwrap(),
                "--at-least",
                &threshold.to_string(),
                "--guest-elf",
                &guest,
                "--out",
                out.to_str().unwrap(),
            ])
        };
        // A false statement has no proof.
        let refused = prove(TOKEN_UNITS + 1, &self.tmp.join("false.json"));
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("the predicate program refuses"),
            "{}",
            stderr(&refused)
        );
        let proved = prove(400_000, &zk);
        assert!(proved.status.success(), "{}", stderr(&proved));
        // Proving time, cycles and proof size, for the record.
        eprintln!("{}", stderr(&proved).trim());
        assert!(
            stderr(&proved).contains(&format!("program {published}")),
            "the predicate program changed: publish its new id in disclosure/guest/PROGRAM_ID: {}",
            stderr(&proved)
        );
        // The balance is in no field of the file, and not as a word in the
        // proof (its hex is 700 KB, where any short number turns up by
        // chance, so the proof is searched for the whole 32-byte word).
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&zk).unwrap()).unwrap();
        let proof = file["proof"].take().as_str().unwrap().to_string();
        let fields = file.to_string();
        assert!(
            !fields.contains(&TOKEN_UNITS.to_string())
                && !fields.contains(&format!("{TOKEN_UNITS:x}")),
            "the balance is in the predicate disclosure: {fields}"
        );
        let word = alloy_primitives::hex::encode(B256::from(U256::from(TOKEN_UNITS)));
        assert!(!proof.contains(&word), "the balance is in the proof");
        let ok = self.verify(&zk);
        assert!(ok.status.success(), "{}", stderr(&ok));
        assert!(
            String::from_utf8_lossy(&ok.stdout).contains(&format!(
                "{payee} held at least 400000 units of token {token}"
            )),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        self.assert_changes_fail(
            &zk,
            &[
                ("threshold", |d| d["claim"]["threshold"] = json!("0x7a121")),
                ("comparison", |d| {
                    d["claim"]["comparison"] = json!("at-most")
                }),
                ("holder", |d| {
                    d["claim"]["account"] = json!(Address::repeat_byte(7))
                }),
                ("zk-batch", |d| d["claim"]["batch"] = json!(2)),
                ("zk-proof", |d| {
                    let proof = d["proof"].as_str().unwrap().to_string();
                    let mid = proof.len() / 2;
                    let flipped = if &proof[mid..mid + 1] == "0" {
                        "1"
                    } else {
                        "0"
                    };
                    d["proof"] = json!(format!("{}{flipped}{}", &proof[..mid], &proof[mid + 1..]));
                }),
            ],
        );
    }
}
