# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title Settlement
@custom:contract-name Settlement
@license Apache-2.0
@notice Holds the venue's collateral, accepts the operator's state roots, pays withdrawals
        proven against final roots, and lets every user exit through an escape hatch if the
        operator censors forced withdrawals. docs/settlement.md is the binding specification;
        rollbook.settlement.reference is the bit-exact Python model of every integer this
        contract computes.
@dev Life cycle:
     - Batches extend the latest one (`batch_index == latest + 1`, `prev_root == root(latest)`)
       and become final `challenge_window_s` seconds after submission: batch `i` is final iff
       `i == 0` (genesis) or `block.timestamp >= submitted_at(i) + challenge_window_s`. A
       challenger may dispute a batch while it is not final; that batch and every later one
       are discarded. Submission times never decrease with the index, so the final batches
       are always a prefix `0 ..= latest_finalized_batch()`.
     - `freeze()` becomes possible when the oldest forced-withdrawal request not covered by
       the latest batch's `forced_count` is older than `forced_deadline_s` (strictly:
       `block.timestamp > requested_at + forced_deadline_s`). The escape root is then the
       latest final root; batches inside their window are discarded. Deposits above the escape
       root's `deposit_count` are refunded in full; the rest of the token balance is the
       escape pool. Registration (markets, accounts, withdrawals) is open while
       `block.timestamp < frozen_at + escape_period_s`; payment from then on, each claim once,
       in full if the registered total fits in the pool, else `claim * pool // total`.
     Leaves are ABI encodings (docs/settlement.md), hashed here as sha256(0x00 || leaf),
     proven against a root (32 siblings, bottom-up, bit h of the index = right child at level
     h: rollbook.commitment.merkle.verify_proof bit for bit), then decoded with `abi_decode`.
     A leaf longer than its kind's maximum, or a malformed ABI encoding, is rejected by
     Vyper's ABI decoder without a reason string (that check runs before the function body);
     every other failure reverts with a "Settlement: ..." reason and moves nothing.
     Gas of `data` in `submit_batch`. Execution (titanoboa): Vyper copies the
     `Bytes[BATCH_DATA_BYTES_MAX]` argument into memory and places the function's other
     memory after it, so every call pays the memory expansion to BATCH_DATA_BYTES_MAX
     whatever the data's length: about 14,400 gas at 64 KiB (27,700 at 96 KiB, 45,100 at
     128 KiB, 155,800 at 256 KiB: quadratic), plus 0.094 gas per byte actually sent
     (calldatacopy, 3 gas per word). Calldata is paid by the transaction: 16 gas per non-zero
     byte and 4 per zero byte (EIP-2028), or the EIP-7623 floor of 40 and 10 once the
     transaction is data-heavy. Transaction receipts on the embedded py-evm chain (Prague):
     125,310 gas for a batch with no data (three fresh slots), 141,766 with 1 KiB, 2,648,160
     with 64 KiB of non-zero bytes (38.5 gas per byte over the empty batch: the floor), 682,050
     with 64 KiB of zero bytes. The calldata dominates; the bound costs 14,400 per call.
     Arithmetic overflow (for instance `size * price * lot` beyond int256) reverts through
     Vyper's checked arithmetic without a reason; values a valid STF produces (128-bit
     fields) stay far below it.
     The token must be a plain ERC-20 (USDC): no fee on transfer, no rebasing. It is
     trusted not to re-enter; state is written before every token call regardless.
"""

from ethereum.ercs import IERC20


# @dev A deposit of `amount` quantums for (`owner`, `subaccount`), credited by the STF as
#      the `Deposit` transaction carrying `deposit_id`.
event Deposited:
    deposit_id: indexed(uint256)
    owner: indexed(address)
    subaccount: uint256
    amount: uint256


# @dev A batch extended the chain of roots. `data_bytes` is the length of the batch data.
event BatchSubmitted:
    batch_index: indexed(uint256)
    prev_root: bytes32
    new_root: bytes32
    data_hash: bytes32
    deposit_count: uint256
    forced_count: uint256
    data_bytes: uint256


# @dev `batch_index` and every later batch were discarded by `challenger`.
event BatchDisputed:
    batch_index: indexed(uint256)
    challenger: address


# @dev The withdrawal leaf `withdrawal_id` of final batch `batch_index` paid `owner`.
event WithdrawalClaimed:
    withdrawal_id: indexed(uint256)
    owner: indexed(address)
    amount: uint256
    batch_index: uint256


# @dev A forced withdrawal the STF must process in `request_id` order (the `ForcedWithdrawal`
#      transaction carries the id); `requested_at` starts its inclusion deadline.
event ForcedWithdrawalRequested:
    request_id: indexed(uint256)
    owner: indexed(address)
    subaccount: uint256
    amount: uint256
    requested_at: uint256


# @dev The contract froze; the escape hatch pays from `escape_pool` by `escape_root`.
event Frozen:
    escape_batch: uint256
    escape_root: bytes32
    escape_pool: uint256


# @dev The escape root's prices of `market_id`, which value positions in that market.
event EscapeMarketRegistered:
    market_id: indexed(uint256)
    index_price_quantums: uint256
    lot_size_nanounits: uint256


# @dev A claim on the escape pool: `kind` is LEAF_KIND_SUBACCOUNT (`key` = subaccount number,
#      `claim` = its positive equity) or LEAF_KIND_WITHDRAWAL (`key` = withdrawal id).
event EscapeRegistered:
    owner: indexed(address)
    kind: indexed(uint256)
    key: uint256
    claim: uint256


# @dev A registered claim was paid `amount` (`claim` after the pro-rata haircut).
event EscapePaid:
    owner: indexed(address)
    kind: indexed(uint256)
    key: uint256
    claim: uint256
    amount: uint256


# @dev A deposit the escape root never credited went back to its depositor in full.
event DepositRefunded:
    deposit_id: indexed(uint256)
    owner: indexed(address)
    amount: uint256


# @dev A batch as the views return it.
struct Batch:
    root: bytes32
    data_hash: bytes32
    deposit_count: uint256
    forced_count: uint256
    submitted_at: uint256


# @dev A batch as stored: the three counters share one slot (`_pack_meta`), which saves two
#      storage writes per submission.
struct BatchRecord:
    root: bytes32
    data_hash: bytes32
    meta: uint256


# @dev A market's committed prices, registered from the escape root.
struct EscapeMarket:
    index_price_quantums: uint256
    lot_size_nanounits: uint256
    registered: bool


# @dev Leaf kind 3, the 12 fields after the kind (docs/settlement.md).
struct MarketLeaf:
    kind: uint256
    market_id: uint256
    instrument_kind: uint256
    index_id: uint256
    index_price_quantums: uint256
    lot_size_nanounits: uint256
    tick_size_quantums: uint256
    open_interest_lots: uint256
    cumulative_funding_ppm: int256
    premium_sum_ppm: int256
    premium_sample_count: uint256
    last_sample_ms: uint256
    last_funding_ms: int256


# @dev One margin group's collateral inside a subaccount leaf.
struct Collateral:
    group: uint256
    collateral_quantums: int256


# @dev One position record inside a subaccount leaf.
struct Position:
    group: uint256
    market_id: uint256
    size_lots: int256
    entry_notional_quantums: int256
    open_bid_lots: uint256
    open_ask_lots: uint256


# @dev Leaf kind 4. The STF keeps every subaccount within these bounds so that it decodes.
struct SubaccountLeaf:
    kind: uint256
    owner: address
    number: uint256
    collaterals: DynArray[Collateral, GROUPS_PER_SUBACCOUNT_MAX]
    positions: DynArray[Position, POSITIONS_PER_SUBACCOUNT_MAX]


# @dev Leaf kind 6.
struct WithdrawalLeaf:
    kind: uint256
    withdrawal_id: uint256
    owner: address
    subaccount: uint256
    amount_quantums: uint256
    batch_index: uint256


# @dev The Merkle tree (rollbook.commitment.merkle): depth, leaf slots, leaf domain prefix.
TREE_DEPTH: public(constant(uint256)) = 32
LEAF_SLOTS: constant(uint256) = 2**TREE_DEPTH
LEAF_PREFIX: constant(Bytes[1]) = b"\x00"

# @dev Leaf kinds (the first ABI word of every leaf) that the contract reads.
LEAF_KIND_MARKET: public(constant(uint256)) = 3
LEAF_KIND_SUBACCOUNT: public(constant(uint256)) = 4
LEAF_KIND_WITHDRAWAL: public(constant(uint256)) = 6

# @dev Protocol bounds shared with the STF (rollbook.execution.config).
GROUPS_PER_SUBACCOUNT_MAX: public(constant(uint256)) = 8
POSITIONS_PER_SUBACCOUNT_MAX: public(constant(uint256)) = 32

# @dev ABI sizes of the leaves: static tuples are 32 bytes per field; the subaccount leaf is 5
#      head words, then each array's length word and elements (2 and 6 words) at their bounds.
WORD_BYTES: constant(uint256) = 32
MARKET_LEAF_BYTES: public(constant(uint256)) = 13 * WORD_BYTES
WITHDRAWAL_LEAF_BYTES: public(constant(uint256)) = 6 * WORD_BYTES
SUBACCOUNT_LEAF_BYTES_MAX: public(constant(uint256)) = (
    5 * WORD_BYTES
    + (1 + 2 * GROUPS_PER_SUBACCOUNT_MAX) * WORD_BYTES
    + (1 + 6 * POSITIONS_PER_SUBACCOUNT_MAX) * WORD_BYTES
)

# @dev The STF's deposit bounds, so that every deposit accepted here is creditable.
DEPOSIT_QUANTUMS_MIN: public(constant(uint256)) = 1
DEPOSIT_QUANTUMS_MAX: public(constant(uint256)) = 10**15
SUBACCOUNT_NUMBER_MAX: public(constant(uint256)) = 65535

# @dev A forced withdrawal asks for min(amount, what margin lets go); the bound keeps the
#      amount inside the 64-bit amount fields of the STF's canonical encoding.
FORCED_WITHDRAWAL_QUANTUMS_MIN: public(constant(uint256)) = 1
FORCED_WITHDRAWAL_QUANTUMS_MAX: public(constant(uint256)) = 2**64 - 1

# @dev Batch data travels in calldata; see the contract NatSpec for its gas (memory
#      expansion to this bound on every submission, so it is not made larger than needed).
#      A full batch's calldata costs about 2.6 million gas under the EIP-7623 floor, well
#      inside a block and the 2**24 per-transaction cap of EIP-7825.
BATCH_DATA_BYTES_MAX: public(constant(uint256)) = 65536

CHALLENGERS_MAX: public(constant(uint256)) = 16

# @dev Durations above ten years are a unit mistake (milliseconds passed as seconds).
DURATION_S_MAX: public(constant(uint256)) = 10 * 365 * 86400

# @dev A position's value is size x price x lot size in nanounits, over 10**9 nanounits.
NANOUNITS_PER_UNIT: constant(int256) = 10**9

# @dev Packing: batch counters and timestamps in 64-bit fields; a deposit record is the
#      depositor (160 bits) under the cumulative deposited amount (96 bits). 2**64 ids and
#      2**96 quantums (7.9e22 USDC) are far beyond any venue; the bounds are still checked.
COUNTER_BITS: constant(uint256) = 64
COUNTER_MAX: constant(uint256) = 2**64 - 1
ADDRESS_BITS: constant(uint256) = 160
ADDRESS_MASK: constant(uint256) = 2**160 - 1
CUMULATIVE_DEPOSITED_MAX: constant(uint256) = 2**96 - 1

# @dev Binary search over batch indices below 2**64 for the latest final one.
BATCH_SEARCH_STEPS_MAX: constant(uint256) = 64


# @dev The collateral token (USDC, 6 decimals: one token unit is one quantum).
token: public(immutable(IERC20))
# @dev The only account that may submit batches.
operator: public(immutable(address))
# @dev Root of batch 0, final from the start.
genesis_root: public(immutable(bytes32))
challenge_window_s: public(immutable(uint256))
forced_deadline_s: public(immutable(uint256))
escape_period_s: public(immutable(uint256))


# @dev The accounts that may dispute, as given to the constructor, and as a set.
challengers: public(DynArray[address, CHALLENGERS_MAX])
is_challenger: public(HashMap[address, bool])

# @dev The index of the latest batch (final or not); batch 0 is genesis.
latest_batch: public(uint256)
_batches: HashMap[uint256, BatchRecord]

# @dev Deposits made so far (the latest deposit id), and per id the packed deposit record.
deposit_count: public(uint256)
_deposits: HashMap[uint256, uint256]
deposit_refunded: public(HashMap[uint256, bool])

# @dev Forced-withdrawal requests made so far (the latest request id), and when each was made.
forced_request_count: public(uint256)
forced_requested_at: public(HashMap[uint256, uint256])

# @dev Withdrawal ids already paid, by claim_withdrawal or by the escape hatch.
withdrawal_paid: public(HashMap[uint256, bool])

# @dev Escape hatch state, set by freeze().
frozen: public(bool)
frozen_at: public(uint256)
escape_batch: public(uint256)
escape_root: public(bytes32)
escape_deposit_count: public(uint256)
escape_pool: public(uint256)
escape_total_claims: public(uint256)
escape_paid_total: public(uint256)
escape_markets: public(HashMap[uint256, EscapeMarket])
# @dev Registered claims are never zero (zero claims are rejected), so zero = not registered.
escape_account_claim: public(HashMap[address, HashMap[uint256, uint256]])
escape_account_paid: public(HashMap[address, HashMap[uint256, bool]])
escape_withdrawal_claim: public(HashMap[uint256, uint256])
escape_withdrawal_owner: public(HashMap[uint256, address])


@deploy
def __init__(
    token_: IERC20,
    operator_: address,
    challengers_: DynArray[address, CHALLENGERS_MAX],
    genesis_root_: bytes32,
    challenge_window_s_: uint256,
    forced_deadline_s_: uint256,
    escape_period_s_: uint256,
):
    """
    @notice Deploys the settlement of one venue, with batch 0 = `genesis_root_`.
    @dev Durations are seconds in [1, DURATION_S_MAX]. The challenger list may be empty (a
         devnet without verifiers); no address may be zero.
    @param token_ The collateral ERC-20 (USDC).
    @param operator_ The account that submits batches.
    @param challengers_ The accounts that may dispute batches inside their window.
    @param genesis_root_ The state root of the genesis state.
    @param challenge_window_s_ Seconds after submission until a batch is final.
    @param forced_deadline_s_ Seconds a forced withdrawal may wait before anyone may freeze.
    @param escape_period_s_ Seconds after the freeze during which claims are registered.
    """
    assert token_.address != empty(address), "Settlement: zero token"
    assert operator_ != empty(address), "Settlement: zero operator"
    for challenger: address in challengers_:
        assert challenger != empty(address), "Settlement: zero challenger"
        self.is_challenger[challenger] = True
    assert challenge_window_s_ != 0, "Settlement: zero challenge window"
    assert forced_deadline_s_ != 0, "Settlement: zero forced deadline"
    assert escape_period_s_ != 0, "Settlement: zero escape period"
    assert challenge_window_s_ <= DURATION_S_MAX, "Settlement: challenge window too long"
    assert forced_deadline_s_ <= DURATION_S_MAX, "Settlement: forced deadline too long"
    assert escape_period_s_ <= DURATION_S_MAX, "Settlement: escape period too long"
    token = token_
    operator = operator_
    genesis_root = genesis_root_
    challenge_window_s = challenge_window_s_
    forced_deadline_s = forced_deadline_s_
    escape_period_s = escape_period_s_
    self.challengers = challengers_
    self._batches[0] = BatchRecord(
        root=genesis_root_, data_hash=empty(bytes32), meta=self._pack_meta(0, 0, block.timestamp)
    )


@external
def deposit(subaccount: uint256, amount: uint256) -> uint256:
    """
    @notice Deposits `amount` token units into the caller's `subaccount`.
    @dev Pulls the tokens with transferFrom (approve first). The STF credits deposit ids in
         order, each once; the bounds are the STF's so that every accepted deposit is
         creditable. Deposits the escape root never credited are refunded after a freeze.
    @param subaccount The subaccount number, at most SUBACCOUNT_NUMBER_MAX.
    @param amount The amount in quantums, in [DEPOSIT_QUANTUMS_MIN, DEPOSIT_QUANTUMS_MAX].
    @return uint256 The deposit id (1, 2, 3, ...).
    """
    assert not self.frozen, "Settlement: frozen"
    assert subaccount <= SUBACCOUNT_NUMBER_MAX, "Settlement: subaccount out of range"
    assert amount >= DEPOSIT_QUANTUMS_MIN, "Settlement: deposit below minimum"
    assert amount <= DEPOSIT_QUANTUMS_MAX, "Settlement: deposit above maximum"
    previous_id: uint256 = self.deposit_count
    assert previous_id < COUNTER_MAX, "Settlement: deposit ids exhausted"
    deposit_id: uint256 = previous_id + 1
    cumulative: uint256 = self._cumulative_deposited(previous_id) + amount
    assert cumulative <= CUMULATIVE_DEPOSITED_MAX, "Settlement: cumulative deposits overflow"
    self._deposits[deposit_id] = convert(msg.sender, uint256) | (cumulative << ADDRESS_BITS)
    self.deposit_count = deposit_id
    log Deposited(deposit_id=deposit_id, owner=msg.sender, subaccount=subaccount, amount=amount)
    assert extcall token.transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "Settlement: token transfer failed"
    return deposit_id


@external
def submit_batch(
    batch_index: uint256,
    prev_root: bytes32,
    new_root: bytes32,
    data_hash: bytes32,
    deposit_count: uint256,
    forced_count: uint256,
    data: Bytes[BATCH_DATA_BYTES_MAX],
):
    """
    @notice Commits the state root after batch `batch_index`. Operator only.
    @dev `data` is the canonical batch encoding; it travels in calldata and is not read here
         (`data_hash` is the operator's commitment to it, checked by verifiers). The counters
         are the globals leaf's: they never go down and never exceed what happened on chain.
    @param batch_index Must be latest_batch + 1.
    @param prev_root Must be the latest batch's root.
    @param new_root The state root after the batch.
    @param data_hash keccak256(data).
    @param deposit_count Deposits credited as of `new_root`.
    @param forced_count Forced withdrawals processed as of `new_root`.
    @param data The batch bytes, at most BATCH_DATA_BYTES_MAX.
    """
    assert msg.sender == operator, "Settlement: caller is not the operator"
    assert not self.frozen, "Settlement: frozen"
    latest: uint256 = self.latest_batch
    assert batch_index == latest + 1, "Settlement: batch index is not latest + 1"
    previous: BatchRecord = self._batches[latest]
    assert prev_root == previous.root, "Settlement: prev_root is not the latest root"
    assert deposit_count >= self._meta_deposit_count(previous.meta), (
        "Settlement: deposit count went down"
    )
    assert deposit_count <= self.deposit_count, "Settlement: deposit count above deposits made"
    assert forced_count >= self._meta_forced_count(previous.meta), (
        "Settlement: forced count went down"
    )
    assert forced_count <= self.forced_request_count, (
        "Settlement: forced count above requests made"
    )
    self._batches[batch_index] = BatchRecord(
        root=new_root,
        data_hash=data_hash,
        meta=self._pack_meta(deposit_count, forced_count, block.timestamp),
    )
    self.latest_batch = batch_index
    log BatchSubmitted(
        batch_index=batch_index,
        prev_root=prev_root,
        new_root=new_root,
        data_hash=data_hash,
        deposit_count=deposit_count,
        forced_count=forced_count,
        data_bytes=len(data),
    )


@external
def dispute(batch_index: uint256):
    """
    @notice Discards batch `batch_index` and every later batch. Challengers only.
    @dev Only a batch that is not final yet; the operator resubmits from `batch_index`.
    @param batch_index The first batch to discard.
    """
    assert self.is_challenger[msg.sender], "Settlement: caller is not a challenger"
    assert not self.frozen, "Settlement: frozen"
    assert batch_index <= self.latest_batch, "Settlement: no such batch"
    assert not self._is_final(batch_index), "Settlement: batch is final"
    self.latest_batch = batch_index - 1  # batch 0 is final, so batch_index >= 1 here
    log BatchDisputed(batch_index=batch_index, challenger=msg.sender)


@external
def claim_withdrawal(
    batch_index: uint256,
    leaf_index: uint256,
    leaf: Bytes[WITHDRAWAL_LEAF_BYTES],
    proof: bytes32[TREE_DEPTH],
):
    """
    @notice Pays a withdrawal leaf of a final batch to its owner, once per withdrawal id.
    @dev Anyone may call; the tokens go to the leaf's owner. Not after a freeze (unpaid
         withdrawals then go through escape_register_withdrawal).
    @param batch_index A final batch whose root holds the leaf.
    @param leaf_index The leaf's slot in that root's tree.
    @param leaf The withdrawal leaf's ABI encoding.
    @param proof The 32 siblings of the leaf's path, bottom-up.
    """
    assert not self.frozen, "Settlement: frozen"
    assert batch_index <= self.latest_batch, "Settlement: no such batch"
    assert self._is_final(batch_index), "Settlement: batch not final"
    assert self._verify_proof(
        self._batches[batch_index].root, leaf_index, sha256(concat(LEAF_PREFIX, leaf)), proof
    ), "Settlement: invalid proof"
    assert extract32(leaf, 0, output_type=uint256) == LEAF_KIND_WITHDRAWAL, (
        "Settlement: not a withdrawal leaf"
    )
    withdrawal: WithdrawalLeaf = abi_decode(leaf, WithdrawalLeaf, unwrap_tuple=False)
    assert not self.withdrawal_paid[withdrawal.withdrawal_id], "Settlement: withdrawal already paid"
    assert withdrawal.amount_quantums != 0, "Settlement: zero withdrawal"
    self.withdrawal_paid[withdrawal.withdrawal_id] = True
    log WithdrawalClaimed(
        withdrawal_id=withdrawal.withdrawal_id,
        owner=withdrawal.owner,
        amount=withdrawal.amount_quantums,
        batch_index=batch_index,
    )
    self._pay(withdrawal.owner, withdrawal.amount_quantums)


@external
def request_forced_withdrawal(subaccount: uint256, amount: uint256) -> uint256:
    """
    @notice Asks the STF to withdraw up to `amount` from the caller's `subaccount`.
    @dev The STF must process requests in id order; it withdraws min(amount, what the margin
         rules let go), possibly 0, into a withdrawal leaf. If the oldest request the latest
         batch has not covered is older than forced_deadline_s, anyone may freeze().
    @param subaccount The subaccount number, at most SUBACCOUNT_NUMBER_MAX.
    @param amount The most to withdraw, in quantums, in
           [FORCED_WITHDRAWAL_QUANTUMS_MIN, FORCED_WITHDRAWAL_QUANTUMS_MAX].
    @return uint256 The request id (1, 2, 3, ...).
    """
    assert not self.frozen, "Settlement: frozen"
    assert subaccount <= SUBACCOUNT_NUMBER_MAX, "Settlement: subaccount out of range"
    assert amount >= FORCED_WITHDRAWAL_QUANTUMS_MIN, "Settlement: forced withdrawal below minimum"
    assert amount <= FORCED_WITHDRAWAL_QUANTUMS_MAX, "Settlement: forced withdrawal above maximum"
    previous_id: uint256 = self.forced_request_count
    assert previous_id < COUNTER_MAX, "Settlement: request ids exhausted"
    request_id: uint256 = previous_id + 1
    self.forced_requested_at[request_id] = block.timestamp
    self.forced_request_count = request_id
    log ForcedWithdrawalRequested(
        request_id=request_id,
        owner=msg.sender,
        subaccount=subaccount,
        amount=amount,
        requested_at=block.timestamp,
    )
    return request_id


@external
def freeze():
    """
    @notice Freezes the contract after a missed forced-withdrawal deadline. Anyone may call.
    @dev The escape root is the latest final root; later batches are discarded. The escape
         pool is the token balance minus the deposits that root has not credited (those are
         refunded in full by refund_deposit).
    """
    assert not self.frozen, "Settlement: already frozen"
    assert self._freezable(), "Settlement: no overdue forced withdrawal"
    escape_batch: uint256 = self._latest_finalized()
    record: BatchRecord = self._batches[escape_batch]
    credited: uint256 = self._meta_deposit_count(record.meta)
    uncredited: uint256 = (
        self._cumulative_deposited(self.deposit_count) - self._cumulative_deposited(credited)
    )
    balance: uint256 = staticcall token.balanceOf(self)
    # only a final root that paid out more than was credited could leave the balance short
    pool: uint256 = 0
    if balance > uncredited:
        pool = balance - uncredited
    self.latest_batch = escape_batch
    self.frozen = True
    self.frozen_at = block.timestamp
    self.escape_batch = escape_batch
    self.escape_root = record.root
    self.escape_deposit_count = credited
    self.escape_pool = pool
    log Frozen(escape_batch=escape_batch, escape_root=record.root, escape_pool=pool)


@external
def escape_register_market(
    leaf_index: uint256, leaf: Bytes[MARKET_LEAF_BYTES], proof: bytes32[TREE_DEPTH]
):
    """
    @notice Registers a market's index price and lot size from the escape root.
    @dev Anyone may call, during the escape period, once per market id. Positions are valued
         with these numbers by escape_register_account.
    @param leaf_index The market leaf's slot in the escape root's tree.
    @param leaf The market leaf's ABI encoding.
    @param proof The 32 siblings of the leaf's path, bottom-up.
    """
    self._check_escape_registration_open()
    assert self._verify_proof(
        self.escape_root, leaf_index, sha256(concat(LEAF_PREFIX, leaf)), proof
    ), "Settlement: invalid proof"
    assert extract32(leaf, 0, output_type=uint256) == LEAF_KIND_MARKET, (
        "Settlement: not a market leaf"
    )
    market: MarketLeaf = abi_decode(leaf, MarketLeaf, unwrap_tuple=False)
    assert not self.escape_markets[market.market_id].registered, (
        "Settlement: market already registered"
    )
    # equity is signed arithmetic: both factors must convert to int256
    assert market.index_price_quantums <= convert(max_value(int256), uint256), (
        "Settlement: market price out of range"
    )
    assert market.lot_size_nanounits <= convert(max_value(int256), uint256), (
        "Settlement: lot size out of range"
    )
    self.escape_markets[market.market_id] = EscapeMarket(
        index_price_quantums=market.index_price_quantums,
        lot_size_nanounits=market.lot_size_nanounits,
        registered=True,
    )
    log EscapeMarketRegistered(
        market_id=market.market_id,
        index_price_quantums=market.index_price_quantums,
        lot_size_nanounits=market.lot_size_nanounits,
    )


@external
def escape_register_account(
    leaf_index: uint256, leaf: Bytes[SUBACCOUNT_LEAF_BYTES_MAX], proof: bytes32[TREE_DEPTH]
):
    """
    @notice Registers a subaccount's positive equity at the escape root as a claim.
    @dev Anyone may call, during the escape period, once per (owner, number). Every market
         the subaccount has a position record in must be registered first. Equity is
         sum(collateral) + sum(floor(size * price * lot / 10**9)) (reference.escape_equity).
         The insurance fund (owner 0) and accounts without positive equity have no claim.
    @param leaf_index The subaccount leaf's slot in the escape root's tree.
    @param leaf The subaccount leaf's ABI encoding.
    @param proof The 32 siblings of the leaf's path, bottom-up.
    """
    self._check_escape_registration_open()
    assert self._verify_proof(
        self.escape_root, leaf_index, sha256(concat(LEAF_PREFIX, leaf)), proof
    ), "Settlement: invalid proof"
    account: SubaccountLeaf = self._decode_subaccount(leaf)
    assert account.owner != empty(address), "Settlement: the insurance fund has no claim"
    assert self.escape_account_claim[account.owner][account.number] == 0, (
        "Settlement: account already registered"
    )
    equity: int256 = self._equity_quantums(account)
    assert equity > 0, "Settlement: no positive equity"
    claim: uint256 = convert(equity, uint256)
    self.escape_account_claim[account.owner][account.number] = claim
    self.escape_total_claims += claim
    log EscapeRegistered(
        owner=account.owner, kind=LEAF_KIND_SUBACCOUNT, key=account.number, claim=claim
    )


@external
def escape_register_withdrawal(
    leaf_index: uint256, leaf: Bytes[WITHDRAWAL_LEAF_BYTES], proof: bytes32[TREE_DEPTH]
):
    """
    @notice Registers an unpaid withdrawal leaf of the escape root as a claim.
    @dev Anyone may call, during the escape period, once per withdrawal id; a withdrawal
         already paid by claim_withdrawal has no claim.
    @param leaf_index The withdrawal leaf's slot in the escape root's tree.
    @param leaf The withdrawal leaf's ABI encoding.
    @param proof The 32 siblings of the leaf's path, bottom-up.
    """
    self._check_escape_registration_open()
    assert self._verify_proof(
        self.escape_root, leaf_index, sha256(concat(LEAF_PREFIX, leaf)), proof
    ), "Settlement: invalid proof"
    assert extract32(leaf, 0, output_type=uint256) == LEAF_KIND_WITHDRAWAL, (
        "Settlement: not a withdrawal leaf"
    )
    withdrawal: WithdrawalLeaf = abi_decode(leaf, WithdrawalLeaf, unwrap_tuple=False)
    assert not self.withdrawal_paid[withdrawal.withdrawal_id], "Settlement: withdrawal already paid"
    assert self.escape_withdrawal_claim[withdrawal.withdrawal_id] == 0, (
        "Settlement: withdrawal already registered"
    )
    assert withdrawal.amount_quantums != 0, "Settlement: zero withdrawal"
    self.escape_withdrawal_claim[withdrawal.withdrawal_id] = withdrawal.amount_quantums
    self.escape_withdrawal_owner[withdrawal.withdrawal_id] = withdrawal.owner
    self.escape_total_claims += withdrawal.amount_quantums
    log EscapeRegistered(
        owner=withdrawal.owner,
        kind=LEAF_KIND_WITHDRAWAL,
        key=withdrawal.withdrawal_id,
        claim=withdrawal.amount_quantums,
    )


@external
def escape_withdraw_account(owner: address, subaccount: uint256):
    """
    @notice Pays a registered subaccount claim to its owner, once, after the escape period.
    @dev Anyone may call. Pays the claim in full if the registered total fits in the pool,
         else claim * escape_pool // escape_total_claims (reference.escape_payout).
    @param owner The subaccount's owner.
    @param subaccount The subaccount number.
    """
    self._check_escape_payment_open()
    claim: uint256 = self.escape_account_claim[owner][subaccount]
    assert claim != 0, "Settlement: account not registered"
    assert not self.escape_account_paid[owner][subaccount], "Settlement: account already paid"
    amount: uint256 = self._escape_payout(claim)
    self.escape_account_paid[owner][subaccount] = True
    self.escape_paid_total += amount
    log EscapePaid(
        owner=owner, kind=LEAF_KIND_SUBACCOUNT, key=subaccount, claim=claim, amount=amount
    )
    self._pay(owner, amount)


@external
def escape_withdraw_withdrawal(withdrawal_id: uint256):
    """
    @notice Pays a registered withdrawal claim to its owner, once, after the escape period.
    @dev Anyone may call. The same haircut as escape_withdraw_account.
    @param withdrawal_id The withdrawal id of the registered leaf.
    """
    self._check_escape_payment_open()
    claim: uint256 = self.escape_withdrawal_claim[withdrawal_id]
    assert claim != 0, "Settlement: withdrawal not registered"
    assert not self.withdrawal_paid[withdrawal_id], "Settlement: withdrawal already paid"
    owner: address = self.escape_withdrawal_owner[withdrawal_id]
    amount: uint256 = self._escape_payout(claim)
    self.withdrawal_paid[withdrawal_id] = True
    self.escape_paid_total += amount
    log EscapePaid(
        owner=owner, kind=LEAF_KIND_WITHDRAWAL, key=withdrawal_id, claim=claim, amount=amount
    )
    self._pay(owner, amount)


@external
def refund_deposit(deposit_id: uint256):
    """
    @notice Refunds, in full, a deposit that the escape root never credited. After a freeze.
    @dev Anyone may call; the tokens go back to the depositor. No time limit.
    @param deposit_id A deposit id above escape_deposit_count and at most deposit_count.
    """
    assert self.frozen, "Settlement: not frozen"
    assert deposit_id != 0 and deposit_id <= self.deposit_count, "Settlement: no such deposit"
    assert deposit_id > self.escape_deposit_count, "Settlement: deposit was credited"
    assert not self.deposit_refunded[deposit_id], "Settlement: deposit already refunded"
    depositor: address = self._depositor(deposit_id)
    amount: uint256 = self._deposit_amount(deposit_id)
    self.deposit_refunded[deposit_id] = True
    log DepositRefunded(deposit_id=deposit_id, owner=depositor, amount=amount)
    self._pay(depositor, amount)


@external
@view
def latest_finalized_batch() -> uint256:
    """
    @notice The index of the latest final batch (0 = genesis).
    @return uint256 The largest final batch index at or below latest_batch.
    """
    return self._latest_finalized()


@external
@view
def is_finalized(batch_index: uint256) -> bool:
    """
    @notice Whether batch `batch_index` exists and is final.
    @param batch_index The batch index.
    @return bool True if batch_index <= latest_batch and its window has passed (or it is 0).
    """
    return batch_index <= self.latest_batch and self._is_final(batch_index)


@external
@view
def batch(batch_index: uint256) -> Batch:
    """
    @notice A batch of the current chain of roots.
    @dev Discarded batches are not returned: reverts above latest_batch.
    @param batch_index At most latest_batch.
    @return Batch (root, data_hash, deposit_count, forced_count, submitted_at).
    """
    assert batch_index <= self.latest_batch, "Settlement: no such batch"
    record: BatchRecord = self._batches[batch_index]
    return Batch(
        root=record.root,
        data_hash=record.data_hash,
        deposit_count=self._meta_deposit_count(record.meta),
        forced_count=self._meta_forced_count(record.meta),
        submitted_at=self._meta_submitted_at(record.meta),
    )


@external
@view
def deposit_info(deposit_id: uint256) -> (address, uint256):
    """
    @notice The depositor and amount of a deposit.
    @param deposit_id In [1, deposit_count].
    @return address The depositor.
    @return uint256 The amount deposited, in quantums.
    """
    assert deposit_id != 0 and deposit_id <= self.deposit_count, "Settlement: no such deposit"
    return self._depositor(deposit_id), self._deposit_amount(deposit_id)


@external
@view
def cumulative_deposited(deposit_id: uint256) -> uint256:
    """
    @notice The total deposited by deposits 1 ..= `deposit_id` (0 for 0).
    @param deposit_id In [0, deposit_count].
    @return uint256 The cumulative amount, in quantums.
    """
    assert deposit_id <= self.deposit_count, "Settlement: no such deposit"
    return self._cumulative_deposited(deposit_id)


@external
@view
def freezable() -> bool:
    """
    @notice Whether freeze() would succeed now.
    @return bool True if not frozen and a forced withdrawal missed its deadline.
    """
    return not self.frozen and self._freezable()


@external
@view
def escape_ends_at() -> uint256:
    """
    @notice When the escape registration period ends and payment starts.
    @return uint256 frozen_at + escape_period_s.
    """
    assert self.frozen, "Settlement: not frozen"
    return self.frozen_at + escape_period_s


@external
@view
def escape_equity(leaf: Bytes[SUBACCOUNT_LEAF_BYTES_MAX]) -> int256:
    """
    @notice The equity of a subaccount leaf at the registered escape prices (no proof).
    @dev The number escape_register_account would register (if positive); every market of
         the leaf's positions must be registered.
    @param leaf A subaccount leaf's ABI encoding.
    @return int256 The signed equity in quantums.
    """
    return self._equity_quantums(self._decode_subaccount(leaf))


@external
@view
def escape_payout(claim: uint256) -> uint256:
    """
    @notice What a registered `claim` is paid at the current registered total.
    @param claim A claim in quantums.
    @return uint256 claim if escape_total_claims <= escape_pool, else
            claim * escape_pool // escape_total_claims.
    """
    return self._escape_payout(claim)


@internal
@pure
def _verify_proof(
    root: bytes32, leaf_index: uint256, leaf_hash: bytes32, proof: bytes32[TREE_DEPTH]
) -> bool:
    # rollbook.commitment.merkle.verify_proof bit for bit: bit h of the index says whether
    # the path node at level h is a right child; an index outside the tree never verifies
    if leaf_index >= LEAF_SLOTS:
        return False
    node: bytes32 = leaf_hash
    index: uint256 = leaf_index
    for sibling: bytes32 in proof:
        if index & 1 == 1:
            node = sha256(concat(sibling, node))
        else:
            node = sha256(concat(node, sibling))
        index = index >> 1
    return node == root


@internal
@pure
def _decode_subaccount(leaf: Bytes[SUBACCOUNT_LEAF_BYTES_MAX]) -> SubaccountLeaf:
    # the kind first: decoding another kind's dynamic layout could fail without a reason
    assert extract32(leaf, 0, output_type=uint256) == LEAF_KIND_SUBACCOUNT, (
        "Settlement: not a subaccount leaf"
    )
    return abi_decode(leaf, SubaccountLeaf, unwrap_tuple=False)


@internal
@view
def _equity_quantums(account: SubaccountLeaf) -> int256:
    # collaterals first, then positions, each in leaf order: reference.escape_equity sums in
    # the same order, so a checked-arithmetic overflow happens at the same step in both
    equity: int256 = 0
    for collateral: Collateral in account.collaterals:
        equity += collateral.collateral_quantums
    for position: Position in account.positions:
        market: EscapeMarket = self.escape_markets[position.market_id]
        assert market.registered, "Settlement: market not registered"
        equity += self._div_floor(
            position.size_lots
            * convert(market.index_price_quantums, int256)
            * convert(market.lot_size_nanounits, int256),
            NANOUNITS_PER_UNIT,
        )
    return equity


@internal
@pure
def _div_floor(numerator: int256, denominator: int256) -> int256:
    # Vyper's // on signed integers truncates toward zero (EVM SDIV); floor is one less when a
    # negative quotient was truncated, i.e. a negative numerator with a non-zero remainder.
    # The caller passes a positive denominator.
    quotient: int256 = numerator // denominator
    if numerator < 0 and numerator % denominator != 0:
        return quotient - 1
    return quotient


@internal
@view
def _escape_payout(claim: uint256) -> uint256:
    # pro rata, rounded down: the payouts never sum above the pool
    total: uint256 = self.escape_total_claims
    pool: uint256 = self.escape_pool
    if total <= pool:
        return claim
    return claim * pool // total


@internal
@view
def _check_escape_registration_open():
    assert self.frozen, "Settlement: not frozen"
    assert block.timestamp < self.frozen_at + escape_period_s, "Settlement: escape period over"


@internal
@view
def _check_escape_payment_open():
    assert self.frozen, "Settlement: not frozen"
    assert block.timestamp >= self.frozen_at + escape_period_s, (
        "Settlement: escape period not over"
    )


@internal
@view
def _freezable() -> bool:
    # the oldest request that the latest batch has not processed, if any, is overdue
    oldest: uint256 = self._meta_forced_count(self._batches[self.latest_batch].meta) + 1
    if oldest > self.forced_request_count:
        return False
    return block.timestamp > self.forced_requested_at[oldest] + forced_deadline_s


@internal
@view
def _is_final(batch_index: uint256) -> bool:
    if batch_index == 0:
        return True
    submitted_at: uint256 = self._meta_submitted_at(self._batches[batch_index].meta)
    return block.timestamp >= submitted_at + challenge_window_s


@internal
@view
def _latest_finalized() -> uint256:
    # submission times never decrease with the index, so the final batches are a prefix:
    # binary search for its end between genesis (final) and the latest batch
    low: uint256 = 0
    high: uint256 = self.latest_batch
    if self._is_final(high):
        return high
    high -= 1  # invariant: low is final, nothing above high is
    for _: uint256 in range(BATCH_SEARCH_STEPS_MAX):
        if low >= high:
            break
        middle: uint256 = high - (high - low) // 2  # rounds up, so low always moves
        if self._is_final(middle):
            low = middle
        else:
            high = middle - 1
    return low


@internal
@pure
def _pack_meta(deposit_count: uint256, forced_count: uint256, submitted_at: uint256) -> uint256:
    # callers keep the counters below 2**64 (checked at deposit and request); a timestamp
    # reaches 2**64 seconds in some 5 * 10**11 years
    return deposit_count | (forced_count << COUNTER_BITS) | (submitted_at << (2 * COUNTER_BITS))


@internal
@pure
def _meta_deposit_count(meta: uint256) -> uint256:
    return meta & COUNTER_MAX


@internal
@pure
def _meta_forced_count(meta: uint256) -> uint256:
    return (meta >> COUNTER_BITS) & COUNTER_MAX


@internal
@pure
def _meta_submitted_at(meta: uint256) -> uint256:
    return meta >> (2 * COUNTER_BITS)


@internal
@view
def _cumulative_deposited(deposit_id: uint256) -> uint256:
    # id 0 is never written: its cumulative amount is 0
    return self._deposits[deposit_id] >> ADDRESS_BITS


@internal
@view
def _deposit_amount(deposit_id: uint256) -> uint256:
    return self._cumulative_deposited(deposit_id) - self._cumulative_deposited(deposit_id - 1)


@internal
@view
def _depositor(deposit_id: uint256) -> address:
    return convert(convert(self._deposits[deposit_id] & ADDRESS_MASK, uint160), address)


@internal
def _pay(receiver: address, amount: uint256):
    # a zero payout (a claim haircut to nothing) moves no tokens
    if amount == 0:
        return
    assert extcall token.transfer(receiver, amount, default_return_value=True), (
        "Settlement: token transfer failed"
    )
