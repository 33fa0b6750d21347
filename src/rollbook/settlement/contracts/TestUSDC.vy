# pragma version ~=0.4.3
"""
@title TestUSDC
@custom:contract-name TestUSDC
@license Apache-2.0
@notice A plain ERC-20 with 6 decimals, standing in for USDC on local chains.
@dev LOCAL-CHAIN TEST TOKEN ONLY: `mint` is open to anyone, so this token has no value and
     must never be deployed where it could be mistaken for real collateral. Everything else is
     the ERC-20 standard (https://eips.ethereum.org/EIPS/eip-20): `transfer`/`transferFrom`
     revert on failure (never return False), `approve` overwrites the allowance, and an
     allowance of max(uint256) is treated as infinite (not decreased by `transferFrom`).
"""

from ethereum.ercs import IERC20

implements: IERC20


# @dev Emitted when `value` tokens move from `sender` to `receiver` (mint: sender = 0x0).
event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


# @dev Emitted when `owner` sets the allowance of `spender` to `value`.
event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


# @dev USDC's precision: amounts are in millionths of a token.
DECIMALS: constant(uint8) = 6
# @dev An allowance of this value is never decreased (the common "infinite approval").
ALLOWANCE_INFINITE: constant(uint256) = max_value(uint256)


# @dev Fixed name and symbol: the constructor takes no arguments, so any tool deploys it as is.
name: public(constant(String[25])) = "Test USD Coin"
symbol: public(constant(String[5])) = "tUSDC"
decimals: public(constant(uint8)) = DECIMALS


# @dev Tokens held per account, in the token's smallest unit.
balanceOf: public(HashMap[address, uint256])
# @dev allowance[owner][spender]: how much `spender` may still move out of `owner`.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev The sum of all balances (minted, never burnt).
totalSupply: public(uint256)


@deploy
def __init__():
    """
    @notice Deploys the token ("Test USD Coin", "tUSDC", 6 decimals) with no supply.
    """
    pass


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` tokens from the caller to `receiver`.
    @dev Reverts if the caller holds less than `amount` or `receiver` is the zero address.
    @param receiver The account credited.
    @param amount The amount moved, in the smallest unit.
    @return bool Always True (failures revert).
    """
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` tokens from `owner` to `receiver` using the caller's allowance.
    @dev Reverts if the allowance or `owner`'s balance is below `amount`. An infinite
         allowance is left untouched.
    @param owner The account debited.
    @param receiver The account credited.
    @param amount The amount moved, in the smallest unit.
    @return bool Always True (failures revert).
    """
    self._spend_allowance(owner, msg.sender, amount)
    self._transfer(owner, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Sets the amount `spender` may move out of the caller's balance.
    @dev Overwrites the previous allowance (the usual ERC-20 race applies: set to 0 first
         when lowering a non-zero allowance that may be in use).
    @param spender The account allowed to spend.
    @param amount The new allowance; max(uint256) means unlimited.
    @return bool Always True (failures revert).
    """
    self._approve(msg.sender, spender, amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Creates `amount` new tokens for `to`. OPEN TO ANYONE.
    @dev Test token for local chains only: there is deliberately no access control so that
         tests, faucets and demos can fund any account.
    @param to The account credited; must not be the zero address.
    @param amount The amount created, in the smallest unit.
    """
    assert to != empty(address), "TestUSDC: mint to the zero address"
    self.totalSupply += amount  # checked arithmetic: reverts on overflow
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _transfer(owner: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "TestUSDC: transfer to the zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "TestUSDC: transfer amount exceeds balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)  # checked just above
    self.balanceOf[receiver] += amount  # cannot overflow: bounded by totalSupply
    log Transfer(sender=owner, receiver=receiver, value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    assert spender != empty(address), "TestUSDC: approve to the zero address"
    self.allowance[owner][spender] = amount
    log Approval(owner=owner, spender=spender, value=amount)


@internal
def _spend_allowance(owner: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][spender]
    if allowed == ALLOWANCE_INFINITE:
        return
    assert allowed >= amount, "TestUSDC: insufficient allowance"
    self._approve(owner, spender, unsafe_sub(allowed, amount))
