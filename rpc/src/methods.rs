//! The method catalog: which RPC action each method is decided as. It
//! gathers the method modules' own lists, so a method is known to the policy
//! exactly when a module answers it.

use super::{
    admin_keys, admin_status, batches, block_reads, disclose, filters, state_reads, trace,
};

/// The RPC action a method is decided as; `None` for methods the node does
/// not know (they get "method not found" without a policy question).
pub(crate) fn method_action(method: &str) -> Option<&'static str> {
    // Methods decided as an action named for what they do, so a policy
    // reads `action == "disclose"`.
    if disclose::METHODS.contains(&method) {
        return Some("disclose");
    }
    // Methods outside the modules that answer families of them.
    const KNOWN: &[&str] = &[
        "eth_chainId",
        "net_version",
        "web3_clientVersion",
        "eth_blockNumber",
        "eth_syncing",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_accounts",
        "eth_getProof",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getLogs",
        "eth_subscribe",
        "eth_unsubscribe",
        "eth_call",
        "eth_estimateGas",
        "eth_createAccessList",
        "eth_sendRawTransaction",
        "eth_sendTransaction",
        "prividium_siweChallenge",
        "prividium_bindWallet",
        "prividium_wallets",
        "prividium_whoami",
        "prividium_adminBindWallet",
        "prividium_adminUnbindWallet",
        "prividium_adminListWallets",
        "prividium_reloadPolicies",
    ];
    let modules: [&'static [&'static str]; 7] = [
        admin_keys::METHODS,
        admin_status::METHODS,
        batches::METHODS,
        filters::METHODS,
        block_reads::METHODS,
        state_reads::METHODS,
        trace::METHODS,
    ];
    if let Some(known) = KNOWN
        .iter()
        .chain(modules.into_iter().flatten())
        .find(|m| **m == method)
    {
        return Some(known);
    }
    // Whole families are governed together, implemented or not, so a
    // forbidden family answers "forbidden" rather than revealing which of
    // its methods exist.
    [
        ("debug_", "debug_*"),
        ("txpool_", "txpool_*"),
        ("admin_", "admin_*"),
        ("eth_sign", "eth_sign*"),
    ]
    .iter()
    .find(|(prefix, _)| method.starts_with(prefix))
    .map(|(_, action)| *action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answered_method_has_a_policy_action_and_nothing_else_does() {
        // Each module's methods are decided as themselves.
        for m in block_reads::METHODS
            .iter()
            .chain(filters::METHODS)
            .chain(state_reads::METHODS)
            .chain(batches::METHODS)
        {
            assert_eq!(method_action(m), Some(*m));
        }
        assert_eq!(
            method_action("eth_sendRawTransaction"),
            Some("eth_sendRawTransaction")
        );
        // Named for what it does, so a policy reads `action == "disclose"`.
        assert_eq!(method_action("prividium_disclose"), Some("disclose"));
        // Families are one question, answered or not.
        assert_eq!(method_action("debug_traceCall"), Some("debug_traceCall"));
        assert_eq!(method_action("debug_getRawBlock"), Some("debug_*"));
        assert_eq!(method_action("eth_signTypedData_v4"), Some("eth_sign*"));
        // Anything else is "method not found" without a policy question.
        assert_eq!(method_action("eth_mining"), None);
        assert_eq!(method_action("prividium_nosuch"), None);
    }
}
