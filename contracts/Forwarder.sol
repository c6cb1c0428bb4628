// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// A generic call forwarder (multicall-style helper). The appliance's tests
/// use it to try to reach forbidden functions through inner calls: policies
/// are enforced on every frame, so wrapping a call changes nothing.
contract Forwarder {
    function forward(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        require(ok, "forward failed");
        return ret;
    }

    function forwardDelegate(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.delegatecall(data);
        require(ok, "delegate failed");
        return ret;
    }
}
