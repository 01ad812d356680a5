from app.core.errors import Conflict, InvalidInput, NotFound


class SubscriptionNotFound(NotFound):
    code, title = "subscription_not_found", "No such webhook subscription"


class EventNotFound(NotFound):
    code, title = "event_not_found", "No such event"


class InvalidWebhookUrl(InvalidInput):
    code, title = "invalid_webhook_url", "The endpoint URL is not one the platform posts to"


class UnknownEventType(InvalidInput):
    code, title = "unknown_event_type", "Not an event type of the catalogue"


class EventTypeNotAllowed(InvalidInput):
    code, title = "event_type_not_allowed", "Organisations of your kind never receive this event type"


class TooManySubscriptions(Conflict):
    code, title = "too_many_subscriptions", "The organisation has as many subscriptions as it may"


class InvalidSubscriptionState(Conflict):
    code, title = "invalid_subscription_state", "The subscription is not in a state that allows this"


class SecretUnreadable(Exception):
    """A sealed secret that does not open under the configured key (``CARBON_WEBHOOK_SECRET_KEY`` changed)."""
