// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BenchKit
/// @notice Helpers for prividium's load generator:
///         - `disperse`: split msg.value equally across many recipients;
///         - a tiny price oracle (`setPrice` / `prices`).
contract BenchKit {
    struct Price {
        uint256 price;
        uint256 updatedAt;
    }

    /// @notice assetId => latest price and the block.timestamp it was set at.
    mapping(uint256 => Price) public prices;

    event PriceUpdated(uint256 indexed assetId, uint256 price);

    error NoRecipients();
    error NotDivisible(uint256 value, uint256 recipients);
    error TransferFailed(address to);

    /// @notice Send msg.value / to.length wei to each address in `to`.
    /// @dev Reverts if `to` is empty or msg.value is not an exact multiple of to.length.
    function disperse(address[] calldata to) external payable {
        uint256 n = to.length;
        if (n == 0) revert NoRecipients();
        if (msg.value % n != 0) revert NotDivisible(msg.value, n);
        uint256 each = msg.value / n;
        for (uint256 i = 0; i < n; ) {
            (bool ok, ) = payable(to[i]).call{value: each}("");
            if (!ok) revert TransferFailed(to[i]);
            unchecked {
                ++i;
            }
        }
    }

    /// @notice Record `price` for `assetId` together with the current block timestamp.
    function setPrice(uint256 assetId, uint256 price) external {
        prices[assetId] = Price(price, block.timestamp);
        emit PriceUpdated(assetId, price);
    }
}
