from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReservationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATUS_UNSPECIFIED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_PENDING: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_COMMITTED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_RELEASED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_EXPIRED: _ClassVar[ReservationStatus]

class SeatStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEAT_STATUS_UNSPECIFIED: _ClassVar[SeatStatus]
    SEAT_STATUS_ACTIVE: _ClassVar[SeatStatus]
    SEAT_STATUS_LEFT: _ClassVar[SeatStatus]

class TableStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TABLE_STATUS_UNSPECIFIED: _ClassVar[TableStatus]
    TABLE_STATUS_OPEN: _ClassVar[TableStatus]
    TABLE_STATUS_CLOSED: _ClassVar[TableStatus]
RESERVATION_STATUS_UNSPECIFIED: ReservationStatus
RESERVATION_STATUS_PENDING: ReservationStatus
RESERVATION_STATUS_COMMITTED: ReservationStatus
RESERVATION_STATUS_RELEASED: ReservationStatus
RESERVATION_STATUS_EXPIRED: ReservationStatus
SEAT_STATUS_UNSPECIFIED: SeatStatus
SEAT_STATUS_ACTIVE: SeatStatus
SEAT_STATUS_LEFT: SeatStatus
TABLE_STATUS_UNSPECIFIED: TableStatus
TABLE_STATUS_OPEN: TableStatus
TABLE_STATUS_CLOSED: TableStatus

class Account(_message.Message):
    __slots__ = ("id", "kind", "owner_ref", "currency", "balance", "held", "available", "status", "version", "system_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_CODE_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    owner_ref: str
    currency: str
    balance: int
    held: int
    available: int
    status: str
    version: int
    system_code: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., owner_ref: _Optional[str] = ..., currency: _Optional[str] = ..., balance: _Optional[int] = ..., held: _Optional[int] = ..., available: _Optional[int] = ..., status: _Optional[str] = ..., version: _Optional[int] = ..., system_code: _Optional[str] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("account_id", "seq", "amount", "balance_after")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    account_id: int
    seq: int
    amount: int
    balance_after: int
    def __init__(self, account_id: _Optional[int] = ..., seq: _Optional[int] = ..., amount: _Optional[int] = ..., balance_after: _Optional[int] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("id", "kind", "currency", "actor", "metadata", "created_at", "entries")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    currency: str
    actor: str
    metadata: _containers.ScalarMap[str, str]
    created_at: str
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., currency: _Optional[str] = ..., actor: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("id", "account_id", "user_id", "table_id", "currency", "amount", "committed_amount", "status", "expires_at", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    account_id: int
    user_id: str
    table_id: str
    currency: str
    amount: int
    committed_amount: int
    status: ReservationStatus
    expires_at: str
    created_at: str
    updated_at: str
    def __init__(self, id: _Optional[int] = ..., account_id: _Optional[int] = ..., user_id: _Optional[str] = ..., table_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ..., committed_amount: _Optional[int] = ..., status: _Optional[_Union[ReservationStatus, str]] = ..., expires_at: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class Seat(_message.Message):
    __slots__ = ("id", "table_id", "user_id", "account_id", "chips", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CHIPS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    table_id: str
    user_id: str
    account_id: int
    chips: int
    status: SeatStatus
    def __init__(self, id: _Optional[int] = ..., table_id: _Optional[str] = ..., user_id: _Optional[str] = ..., account_id: _Optional[int] = ..., chips: _Optional[int] = ..., status: _Optional[_Union[SeatStatus, str]] = ...) -> None: ...

class Table(_message.Message):
    __slots__ = ("table_id", "currency", "status", "chips", "seats")
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHIPS_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    table_id: str
    currency: str
    status: TableStatus
    chips: int
    seats: _containers.RepeatedCompositeFieldContainer[Seat]
    def __init__(self, table_id: _Optional[str] = ..., currency: _Optional[str] = ..., status: _Optional[_Union[TableStatus, str]] = ..., chips: _Optional[int] = ..., seats: _Optional[_Iterable[_Union[Seat, _Mapping]]] = ...) -> None: ...

class WalletRef(_message.Message):
    __slots__ = ("user_id", "currency")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    currency: str
    def __init__(self, user_id: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("account_id", "wallet")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    WALLET_FIELD_NUMBER: _ClassVar[int]
    account_id: int
    wallet: WalletRef
    def __init__(self, account_id: _Optional[int] = ..., wallet: _Optional[_Union[WalletRef, _Mapping]] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("account", "source")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    account: Account
    source: str
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("account_id", "cursor", "limit")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account_id: int
    cursor: str
    limit: int
    def __init__(self, account_id: _Optional[int] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class LedgerItem(_message.Message):
    __slots__ = ("transaction_id", "kind", "seq", "amount", "balance_after", "created_at", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    transaction_id: int
    kind: str
    seq: int
    amount: int
    balance_after: int
    created_at: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, transaction_id: _Optional[int] = ..., kind: _Optional[str] = ..., seq: _Optional[int] = ..., amount: _Optional[int] = ..., balance_after: _Optional[int] = ..., created_at: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("items", "next_cursor")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[LedgerItem]
    next_cursor: str
    def __init__(self, items: _Optional[_Iterable[_Union[LedgerItem, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("idempotency_key", "user_id", "table_id", "amount", "ttl_seconds")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    user_id: str
    table_id: str
    amount: int
    ttl_seconds: int
    def __init__(self, idempotency_key: _Optional[str] = ..., user_id: _Optional[str] = ..., table_id: _Optional[str] = ..., amount: _Optional[int] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("idempotency_key", "reservation_id", "amount", "all")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    reservation_id: int
    amount: int
    all: bool
    def __init__(self, idempotency_key: _Optional[str] = ..., reservation_id: _Optional[int] = ..., amount: _Optional[int] = ..., all: _Optional[bool] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("idempotency_key", "reservation_id", "reason")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    reservation_id: int
    reason: str
    def __init__(self, idempotency_key: _Optional[str] = ..., reservation_id: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: int
    def __init__(self, reservation_id: _Optional[int] = ...) -> None: ...

class ReservationResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class CommitReservationResponse(_message.Message):
    __slots__ = ("reservation", "seat", "transaction")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    seat: Seat
    transaction: Transaction
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ..., seat: _Optional[_Union[Seat, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class OpenTableRequest(_message.Message):
    __slots__ = ("idempotency_key", "table_id", "currency")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    table_id: str
    currency: str
    def __init__(self, idempotency_key: _Optional[str] = ..., table_id: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class CloseTableRequest(_message.Message):
    __slots__ = ("idempotency_key", "table_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    table_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., table_id: _Optional[str] = ...) -> None: ...

class GetTableRequest(_message.Message):
    __slots__ = ("table_id",)
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    table_id: str
    def __init__(self, table_id: _Optional[str] = ...) -> None: ...

class TableResponse(_message.Message):
    __slots__ = ("table",)
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: Table
    def __init__(self, table: _Optional[_Union[Table, _Mapping]] = ...) -> None: ...

class BuyInRequest(_message.Message):
    __slots__ = ("idempotency_key", "user_id", "table_id", "amount", "ttl_seconds")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    user_id: str
    table_id: str
    amount: int
    ttl_seconds: int
    def __init__(self, idempotency_key: _Optional[str] = ..., user_id: _Optional[str] = ..., table_id: _Optional[str] = ..., amount: _Optional[int] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class BuyInResponse(_message.Message):
    __slots__ = ("reservation", "seat", "transaction")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    seat: Seat
    transaction: Transaction
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ..., seat: _Optional[_Union[Seat, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class SettleHandRequest(_message.Message):
    __slots__ = ("idempotency_key", "table_id", "hand_id", "contributions", "payouts", "rake")
    class ContributionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PayoutsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    HAND_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    RAKE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    table_id: str
    hand_id: str
    contributions: _containers.ScalarMap[str, int]
    payouts: _containers.ScalarMap[str, int]
    rake: int
    def __init__(self, idempotency_key: _Optional[str] = ..., table_id: _Optional[str] = ..., hand_id: _Optional[str] = ..., contributions: _Optional[_Mapping[str, int]] = ..., payouts: _Optional[_Mapping[str, int]] = ..., rake: _Optional[int] = ...) -> None: ...

class SettleHandResponse(_message.Message):
    __slots__ = ("hand_id", "table", "transaction")
    HAND_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    hand_id: str
    table: Table
    transaction: Transaction
    def __init__(self, hand_id: _Optional[str] = ..., table: _Optional[_Union[Table, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class CashOutRequest(_message.Message):
    __slots__ = ("idempotency_key", "table_id", "user_id", "amount", "leave", "all")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    table_id: str
    user_id: str
    amount: int
    leave: bool
    all: bool
    def __init__(self, idempotency_key: _Optional[str] = ..., table_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount: _Optional[int] = ..., leave: _Optional[bool] = ..., all: _Optional[bool] = ...) -> None: ...

class CashOutResponse(_message.Message):
    __slots__ = ("seat", "transaction", "account")
    SEAT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    seat: Seat
    transaction: Transaction
    account: Account
    def __init__(self, seat: _Optional[_Union[Seat, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class PlayerLimit(_message.Message):
    __slots__ = ("owner_ref", "currency", "kind", "period", "value", "pending_value", "pending_removal", "pending_effective_at")
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PENDING_VALUE_FIELD_NUMBER: _ClassVar[int]
    PENDING_REMOVAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    owner_ref: str
    currency: str
    kind: str
    period: str
    value: int
    pending_value: int
    pending_removal: bool
    pending_effective_at: str
    def __init__(self, owner_ref: _Optional[str] = ..., currency: _Optional[str] = ..., kind: _Optional[str] = ..., period: _Optional[str] = ..., value: _Optional[int] = ..., pending_value: _Optional[int] = ..., pending_removal: _Optional[bool] = ..., pending_effective_at: _Optional[str] = ...) -> None: ...

class Exclusion(_message.Message):
    __slots__ = ("owner_ref", "kind", "starts_at", "ends_at")
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    owner_ref: str
    kind: str
    starts_at: str
    ends_at: str
    def __init__(self, owner_ref: _Optional[str] = ..., kind: _Optional[str] = ..., starts_at: _Optional[str] = ..., ends_at: _Optional[str] = ...) -> None: ...

class GetPlayerProtectionRequest(_message.Message):
    __slots__ = ("owner_ref", "currency")
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    owner_ref: str
    currency: str
    def __init__(self, owner_ref: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class GetPlayerProtectionResponse(_message.Message):
    __slots__ = ("owner_ref", "limits", "exclusion")
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSION_FIELD_NUMBER: _ClassVar[int]
    owner_ref: str
    limits: _containers.RepeatedCompositeFieldContainer[PlayerLimit]
    exclusion: Exclusion
    def __init__(self, owner_ref: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[PlayerLimit, _Mapping]]] = ..., exclusion: _Optional[_Union[Exclusion, _Mapping]] = ...) -> None: ...

class SetPlayerLimitRequest(_message.Message):
    __slots__ = ("idempotency_key", "owner_ref", "currency", "kind", "period", "value", "remove")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    owner_ref: str
    currency: str
    kind: str
    period: str
    value: int
    remove: bool
    def __init__(self, idempotency_key: _Optional[str] = ..., owner_ref: _Optional[str] = ..., currency: _Optional[str] = ..., kind: _Optional[str] = ..., period: _Optional[str] = ..., value: _Optional[int] = ..., remove: _Optional[bool] = ...) -> None: ...

class SetPlayerLimitResponse(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: PlayerLimit
    def __init__(self, limit: _Optional[_Union[PlayerLimit, _Mapping]] = ...) -> None: ...

class StartSelfExclusionRequest(_message.Message):
    __slots__ = ("idempotency_key", "owner_ref", "kind", "days")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    owner_ref: str
    kind: str
    days: int
    def __init__(self, idempotency_key: _Optional[str] = ..., owner_ref: _Optional[str] = ..., kind: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class StartSelfExclusionResponse(_message.Message):
    __slots__ = ("exclusion", "excluded_until")
    EXCLUSION_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    exclusion: Exclusion
    excluded_until: str
    def __init__(self, exclusion: _Optional[_Union[Exclusion, _Mapping]] = ..., excluded_until: _Optional[str] = ...) -> None: ...
