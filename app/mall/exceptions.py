from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class ItemNotFound(NotFound):
    code, title = "item_not_found", "No such item"


class NotItemOwner(Forbidden):
    code, title = "not_item_owner", "This item belongs to another merchant"


class InvalidSaleWindow(InvalidInput):
    code, title = "invalid_sale_window", "sale_ends_at must be after sale_starts_at"


class UnknownOperator(InvalidInput):
    code, title = "unknown_operator", "operator_ids must name registered operators"


class InvalidItemTransition(Conflict):
    code, title = "invalid_item_transition", "The item is not in a state that allows this"


class InvalidQuantity(InvalidInput):
    code, title = "invalid_quantity", "quantity must be a whole number from 1 to 100"


class ItemPaused(Conflict):
    code, title = "item_paused", "The merchant has paused this item"


class SaleEnded(Conflict):
    code, title = "sale_ended", "The sale of this item has ended"


class OutsideSaleWindow(Conflict):
    code, title = "outside_sale_window", "The item is not on sale at this time"


class ItemRestricted(Forbidden):
    code, title = "item_restricted", "This item is only for users of certain operators"


class OutOfStock(Conflict):
    code, title = "out_of_stock", "Not enough stock left"


class PerUserLimitExceeded(Conflict):
    code, title = "per_user_limit_exceeded", "This would exceed the item's per-person limit"


class OrderNotFound(NotFound):
    code, title = "order_not_found", "No such order"


class VoucherNotFound(NotFound):
    code, title = "voucher_not_found", "No such voucher"


class VoucherRedeemed(Conflict):
    code, title = "voucher_redeemed", "The voucher has already been used"


class VoucherCancelled(Conflict):
    code, title = "voucher_cancelled", "The order was cancelled"


class VoucherExpired(Conflict):
    code, title = "voucher_expired", "The voucher has expired"


class InvalidPoints(InvalidInput):
    code, title = "invalid_points", "points must be a whole number from 1 to 1,000,000,000"


class OperatorRequired(Forbidden):
    code, title = "operator_token_required", "This needs a user token issued through an operator"


class OperatorOrderConflict(Conflict):
    code, title = "operator_order_conflict", "This operator order id was used for another redemption"


class RedemptionNotFound(NotFound):
    code, title = "redemption_not_found", "No such redemption"


class RedemptionReversed(Conflict):
    code, title = "redemption_already_reversed", "The redemption was already reversed"


class ReversalWindowClosed(Conflict):
    code, title = "reversal_window_closed", "The redemption is too old to be reversed"


class InvalidPeriod(InvalidInput):
    code, title = "invalid_period", "from must not be after to, and a report spans at most 366 days"


class FieldNotNullable(InvalidInput):
    code, title = "field_not_nullable", "This field cannot be null"
