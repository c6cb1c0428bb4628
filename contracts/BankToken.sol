// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title BankToken
/// @notice Plain ERC-20 used by prividium's end-to-end tests and load generator.
/// @dev 18 decimals. The constructor mints `initialSupply` to the deployer.
///      `mintBatch` lets the deployer (owner) fund many accounts in chunks.
contract BankToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    address public immutable owner;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    error InvalidReceiver(address to);
    error NotOwner(address caller);

    constructor(string memory name_, string memory symbol_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        owner = msg.sender;
        _mint(msg.sender, initialSupply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Mint `amountEach` to every address in `to`. Owner only.
    function mintBatch(address[] calldata to, uint256 amountEach) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        uint256 n = to.length;
        totalSupply += amountEach * n; // checked: reverts on overflow
        for (uint256 i = 0; i < n; ) {
            address a = to[i];
            if (a == address(0)) revert InvalidReceiver(a);
            unchecked {
                // cannot overflow: sum of balances <= totalSupply
                balanceOf[a] += amountEach;
                ++i;
            }
            emit Transfer(address(0), a, amountEach);
        }
    }

    function _transfer(address from, address to, uint256 value) internal {
        if (to == address(0)) revert InvalidReceiver(to);
        uint256 bal = balanceOf[from];
        if (bal < value) revert InsufficientBalance(from, bal, value);
        unchecked {
            balanceOf[from] = bal - value;
            // cannot overflow: sum of balances <= totalSupply
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }

    function _mint(address to, uint256 value) internal {
        if (to == address(0)) revert InvalidReceiver(to);
        totalSupply += value;
        unchecked {
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
    }
}
