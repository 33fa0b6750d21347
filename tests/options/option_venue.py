"""An options venue for the tests: the BTC perpetual, listed BTC options, smiles and helpers."""

from __future__ import annotations

from collections.abc import Iterable

from conftest import BTC, INDEX_100K_QUANTUMS, USDC, Venue, flat_smile, options_config
from rollbook.execution import (
    ListOption,
    OptionType,
    PlaceOrder,
    Side,
    SviParameters,
    TimeInForce,
    Transaction,
    VenueConfig,
)
from rollbook.execution.state import MarketState

DAY_MS = 86_400_000
START_MS = 1_000_000  # Venue's clock at genesis
EXPIRY_MS = START_MS + 7 * DAY_MS
SHORT_EXPIRY_MS = START_MS + 3_600_000  # an hour after genesis
STRIKES = (90_000 * USDC, 100_000 * USDC, 110_000 * USDC)
VOL_PPM = 600_000
CALL = OptionType.CALL
PUT = OptionType.PUT
FIRST_OPTION_ID = 100


class OptionVenue(Venue):
    """A ``Venue`` with options: ``option_id[(expiry, strike, type)]`` names listed markets."""

    def __init__(self, config: VenueConfig | None = None) -> None:
        super().__init__(config or options_config())
        self.option_id: dict[tuple[int, int, OptionType], int] = {}
        self.next_market_id = FIRST_OPTION_ID

    def list_tx(self, expiry_ms: int, strike: int, option_type: OptionType) -> ListOption:
        market_id = self.next_market_id
        self.next_market_id += 1
        self.option_id[(expiry_ms, strike, option_type)] = market_id
        return ListOption(market_id, BTC, expiry_ms, strike, option_type)

    def list_options(self, expiry_ms: int = EXPIRY_MS, strikes: Iterable[int] = STRIKES,
                     types: Iterable[OptionType] = (CALL, PUT)) -> list[int]:
        txs = [self.list_tx(expiry_ms, strike, t) for strike in strikes for t in types]
        self.run_ok(*txs)
        return [tx.market_id for tx in txs]

    def smile(self, expiry_ms: int = EXPIRY_MS, vol_ppm: int = VOL_PPM) -> SviParameters:
        return flat_smile(BTC, expiry_ms, self.next_ms, vol_ppm)

    def set_vol(self, vol_ppm: int = VOL_PPM, *expiries: int) -> None:
        smiles = tuple(self.smile(e, vol_ppm) for e in (expiries or (EXPIRY_MS,)))
        self.run_ok(self.volatility(*smiles))

    def market(self, market_id: int) -> MarketState:
        return self.state.markets[market_id]

    def mark_ticks(self, market_id: int) -> int:
        market = self.market(market_id)
        return max(1, market.index_price_quantums // market.config.tick_size_quantums)

    def oid(self, strike: int, option_type: OptionType, expiry_ms: int = EXPIRY_MS) -> int:
        return self.option_id[(expiry_ms, strike, option_type)]


def option_venue(expiries: Iterable[int] = (EXPIRY_MS,), strikes: Iterable[int] = STRIKES,
                 config: VenueConfig | None = None, index: int = INDEX_100K_QUANTUMS,
                 vol_ppm: int = VOL_PPM) -> OptionVenue:
    """BTC at ``index``, calls and puts at ``strikes`` for each expiry, flat smiles."""
    v = OptionVenue(config)
    v.run_ok(v.oracle(index))
    expiries = tuple(expiries)
    strikes = tuple(strikes)
    for expiry_ms in expiries:
        v.list_options(expiry_ms, strikes)
    v.set_vol(vol_ppm, *expiries)
    return v


def order(owner: bytes, market_id: int, side: Side, price_ticks: int, size_lots: int,
          tif: TimeInForce = TimeInForce.GTC, **kwargs: object) -> Transaction:
    return PlaceOrder(owner, 0, market_id, side, price_ticks, size_lots,  # type: ignore[arg-type]
                      time_in_force=tif, **kwargs)
